package connector

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// treated is the inner-query expression for a column under its treatment:
// the only place raw values are turned into what may leave the node.
func (c *compiler) treated(col *yrdv1.Column) (string, error) {
	id := c.id(col.GetName())
	switch c.treat[col.GetName()] {
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_RAW:
		return id, nil
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_MASKED:
		if strings.EqualFold(col.GetType(), "VARCHAR") {
			return "'***'", nil
		}
		return cast(c.dl, "NULL", col.GetType()), nil
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_PSEUDONYMISED:
		if len(c.key) < MinPseudonymKeyLen {
			return "", fmt.Errorf("connector: column %q is pseudonymised but the key is shorter than %d bytes", col.GetName(), MinPseudonymKeyLen)
		}
		// The key goes in as hex text: sha256 hashes text, and hex keeps
		// arbitrary key bytes valid UTF-8.
		return c.dl.keyedHash(c.bind(hex.EncodeToString(c.key)), c.dl.valueText(id, col.GetType())), nil
	case yrdv1.ColumnTreatment_COLUMN_TREATMENT_GENERALISED:
		return generalised(c.dl, col)
	}
	return "", fmt.Errorf("connector: column %q: no usable treatment", col.GetName())
}

// generalised is the SQL that coarsens a quasi-identifier by its catalog
// generalisation, written so that PostgreSQL reads it alike: the lower
// bound of a numeric band, a string's prefix, a date or timestamp
// truncated to its month or year. The numbers come from the catalog, not
// from requester text, so they are written in place.
func generalised(dl dialect, col *yrdv1.Column) (string, error) {
	id := dl.ident(col.GetName())
	typ := strings.ToUpper(col.GetType())
	switch r := col.GetGeneralise().GetRule().(type) {
	case *yrdv1.Generalisation_BandWidth:
		w := r.BandWidth
		if !(w > 0) || math.IsInf(w, 1) || (typ != "INTEGER" && typ != "BIGINT" && typ != "DOUBLE" && typ != "DECIMAL") {
			break
		}
		band := "floor(" + cast(dl, id, "DOUBLE") + " / " + strconv.FormatFloat(w, 'g', -1, 64) + ") * " + strconv.FormatFloat(w, 'g', -1, 64)
		if (typ == "INTEGER" || typ == "BIGINT") && w == math.Trunc(w) {
			return cast(dl, band, "BIGINT"), nil
		}
		return cast(dl, band, "DOUBLE"), nil
	case *yrdv1.Generalisation_PrefixLength:
		if r.PrefixLength > 0 && typ == "VARCHAR" {
			return "left(" + id + ", " + strconv.FormatUint(uint64(r.PrefixLength), 10) + ")", nil
		}
	case *yrdv1.Generalisation_Truncate:
		unit := map[yrdv1.DateTruncation]string{yrdv1.DateTruncation_DATE_TRUNCATION_MONTH: "month", yrdv1.DateTruncation_DATE_TRUNCATION_YEAR: "year"}[r.Truncate]
		if unit != "" && (typ == "DATE" || typ == "TIMESTAMP") {
			return cast(dl, "date_trunc('"+unit+"', "+cast(dl, id, "TIMESTAMP")+")", typ), nil
		}
	}
	return "", fmt.Errorf("connector: column %q is generalised but has no generalisation that fits its type %s", col.GetName(), typ)
}
