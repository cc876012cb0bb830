package procnet

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DataFile maps one dataset to CSV files, relative to the data dir.
type DataFile struct {
	Dataset string
	Paths   []string
}

// MapDataFiles adds files to the local data mappings of the node in dir,
// as an operator would: a [[data.files]] table each, appended to the
// yrdnode.toml that `yrdnode init` wrote (which has no data section).
func MapDataFiles(dir string, files []DataFile) error {
	var b strings.Builder
	for _, f := range files {
		quoted := make([]string, len(f.Paths))
		for i, p := range f.Paths {
			quoted[i] = strconv.Quote(p) // a TOML basic string for plain paths
		}
		fmt.Fprintf(&b, "\n[[data.files]]\ndataset = %s\nformat = \"csv\"\npaths = [%s]\n",
			strconv.Quote(f.Dataset), strings.Join(quoted, ", "))
	}
	path := filepath.Join(dir, "yrdnode.toml")
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(b.String()); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
