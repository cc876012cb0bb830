package catalogspec

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// valid returns a dataset that sets every publisher field, so each test row
// breaks exactly one rule.
func valid() *yrdv1.Dataset {
	return &yrdv1.Dataset{
		Id:          "shanghai.connected-vehicles.lingang-trips",
		OwnerCity:   "shanghai",
		OwnerOrg:    "lingang-ica",
		Title:       "临港智能网联汽车行程 Lingang connected-car trips",
		Description: "Trips of connected test vehicles.\n\tVehicle ids are pseudonymous.",
		Tags:        []string{"临港", "connected-vehicles", "mobility_2024"},
		Sector:      "connected-vehicles",
		Level:       yrdv1.ClassificationLevel_LEVEL_GENERAL,
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
			{Name: "trip_id", Type: "VARCHAR", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_NONE, IdentifierRole: yrdv1.IdentifierRole_IDENTIFIER_NONE},
			{Name: "vehicle_id", Type: "VARCHAR", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL, IdentifierRole: yrdv1.IdentifierRole_IDENTIFIER_QUASI, Description: "Pseudonymous."},
			{Name: "distance_km", Type: "DOUBLE", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_NONE, IdentifierRole: yrdv1.IdentifierRole_IDENTIFIER_NONE},
		}},
		StandardSchemaId: "yrd.connected-car-trips.v2",
		UpdateFrequency:  "daily",
		DataRights: &yrdv1.DataRights{
			Holder:             "上海临港智能网联汽车研究中心",
			ProcessingUseRight: true,
			RegistrationRef:    "SHDE-2024-000457",
		},
		PermittedPurposes:   []string{"autonomous-driving-research"},
		CrossBorderEligible: true,
	}
}

func fieldsOf(err error) []string {
	var es Errors
	if !errors.As(err, &es) {
		return nil
	}
	var fs []string
	for _, e := range es {
		fs = append(fs, e.Field)
	}
	return fs
}

func TestValidateValid(t *testing.T) {
	d := valid()
	if err := Validate(d); err != nil {
		t.Fatalf("valid dataset: %v", err)
	}
	if !proto.Equal(d, valid()) {
		t.Error("Validate changed a dataset already in normal form")
	}
	if Validate(valid()) != nil {
		t.Fatal("a nil Errors must not be returned as a non-nil error")
	}
}

func TestValidateRules(t *testing.T) {
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := valid()
			tc.mutate(d)
			err := Validate(d)
			if tc.ok {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			fs := fieldsOf(err)
			if len(fs) != 1 || fs[0] != tc.field {
				t.Fatalf("got error fields %q (%v), want exactly [%q]", fs, err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

// ruleCase is a change to a valid dataset and what Validate says of it.
type ruleCase struct {
	name   string
	mutate func(d *yrdv1.Dataset)
	field  string // "" with ok: the mutation is valid
	ok     bool
	msg    string // substring of the message, if set
}

// ruleCases is one case table for every rule, long because the rules are
// many; each rule's edge cases stay side by side.
func ruleCases() []ruleCase {
	long := func(n int, s string) string { return strings.Repeat(s, n) }
	cols := func(d *yrdv1.Dataset) []*yrdv1.Column { return d.Schema.Columns }
	prefix := func(n uint32) *yrdv1.Generalisation {
		return &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_PrefixLength{PrefixLength: n}}
	}
	band := func(w float64) *yrdv1.Generalisation {
		return &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_BandWidth{BandWidth: w}}
	}
	list := func(n int, f func(i int) string) []string {
		l := make([]string, n)
		for i := range l {
			l[i] = f(i)
		}
		return l
	}
	nCols := func(n int) []*yrdv1.Column {
		c := make([]*yrdv1.Column, n)
		for i := range c {
			c[i] = &yrdv1.Column{Name: fmt.Sprintf("c%d", i), Type: "INTEGER", PersonalInfo: yrdv1.PersonalInfo_PERSONAL_INFO_NONE}
		}
		return c
	}
	return []ruleCase{
		{name: "valid", ok: true, mutate: func(d *yrdv1.Dataset) {}},

		{name: "id missing", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "" }, msg: "required"},
		{name: "id too short", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "ab" }},
		{name: "id 3 chars", ok: true, mutate: func(d *yrdv1.Dataset) { d.Id = "abc" }},
		{name: "id 128 chars", ok: true, mutate: func(d *yrdv1.Dataset) { d.Id = long(128, "a") }},
		{name: "id too long", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = long(129, "a") }},
		{name: "id upper case", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "Shanghai.trips" }, msg: `"Shanghai.trips"`},
		{name: "id leading hyphen", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "-sh.trips" }},
		{name: "id trailing hyphen", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "sh-.trips" }},
		{name: "id empty segment", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "sh..trips" }},
		{name: "id trailing dot", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "sh.trips." }},
		{name: "id underscore", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "sh.lingang_trips" }, msg: "e.g."},
		{name: "id slash", field: "id", mutate: func(d *yrdv1.Dataset) { d.Id = "sh/trips" }},

		{name: "owner_city missing", field: "owner_city", mutate: func(d *yrdv1.Dataset) { d.OwnerCity = "" }},
		{name: "owner_city unknown", field: "owner_city", mutate: func(d *yrdv1.Dataset) { d.OwnerCity = "beijing" }, msg: `"suzhou-js"`},
		{name: "owner_city ambiguous", field: "owner_city", mutate: func(d *yrdv1.Dataset) { d.OwnerCity = "Suzhou" }, msg: `"suzhou-ah"`},
		{name: "owner_city zh name", field: "owner_city", mutate: func(d *yrdv1.Dataset) { d.OwnerCity = "台州" }, msg: `"taizhou-zj"`},
		{name: "owner_city other city", ok: true, mutate: func(d *yrdv1.Dataset) { d.OwnerCity = "suzhou-ah" }},

		{name: "owner_org missing", field: "owner_org", mutate: func(d *yrdv1.Dataset) { d.OwnerOrg = "" }},
		{name: "owner_org bad", field: "owner_org", mutate: func(d *yrdv1.Dataset) { d.OwnerOrg = "SH Civil" }},
		{name: "owner_org one char", field: "owner_org", mutate: func(d *yrdv1.Dataset) { d.OwnerOrg = "a" }},
		{name: "owner_org too long", field: "owner_org", mutate: func(d *yrdv1.Dataset) { d.OwnerOrg = long(65, "a") }},
		{name: "owner_org 64", ok: true, mutate: func(d *yrdv1.Dataset) { d.OwnerOrg = long(64, "a") }},

		{name: "title missing", field: "title", mutate: func(d *yrdv1.Dataset) { d.Title = "" }},
		{name: "title blank", field: "title", mutate: func(d *yrdv1.Dataset) { d.Title = "  " }},
		{name: "title 200 runes", ok: true, mutate: func(d *yrdv1.Dataset) { d.Title = long(200, "老") }},
		{name: "title too long", field: "title", mutate: func(d *yrdv1.Dataset) { d.Title = long(201, "老") }},
		{name: "title newline", field: "title", mutate: func(d *yrdv1.Dataset) { d.Title = "a\nb" }},
		{name: "title C1 control", field: "title", mutate: func(d *yrdv1.Dataset) { d.Title = "a\u0085b" }},
		{name: "title bad utf8", field: "title", mutate: func(d *yrdv1.Dataset) { d.Title = "a\xffb" }},
		{name: "description empty", ok: true, mutate: func(d *yrdv1.Dataset) { d.Description = "" }},
		{name: "description 4000", ok: true, mutate: func(d *yrdv1.Dataset) { d.Description = long(4000, "数") }},
		{name: "description too long", field: "description", mutate: func(d *yrdv1.Dataset) { d.Description = long(4001, "数") }},
		{name: "description control", field: "description", mutate: func(d *yrdv1.Dataset) { d.Description = "a\x00b" }},
		{name: "description CR", field: "description", mutate: func(d *yrdv1.Dataset) { d.Description = "a\r\nb" }},
		{name: "description bad utf8", field: "description", mutate: func(d *yrdv1.Dataset) { d.Description = "\xc3" }},

		{name: "tags none", ok: true, mutate: func(d *yrdv1.Dataset) { d.Tags = nil }},
		{name: "tags 32", ok: true, mutate: func(d *yrdv1.Dataset) { d.Tags = list(32, func(i int) string { return fmt.Sprint("t", i) }) }},
		{name: "tags too many", field: "tags", mutate: func(d *yrdv1.Dataset) { d.Tags = list(33, func(i int) string { return fmt.Sprint("t", i) }) }},
		{name: "tag empty", field: "tags[1]", mutate: func(d *yrdv1.Dataset) { d.Tags[1] = "" }},
		{name: "tag upper", field: "tags[2]", mutate: func(d *yrdv1.Dataset) { d.Tags[2] = "Mobility" }},
		{name: "tag space", field: "tags[0]", mutate: func(d *yrdv1.Dataset) { d.Tags[0] = "elderly care" }},
		{name: "tag punctuation", field: "tags[0]", mutate: func(d *yrdv1.Dataset) { d.Tags[0] = "养老," }},
		{name: "tag lowercase greek", ok: true, mutate: func(d *yrdv1.Dataset) { d.Tags[0] = "αβγ" }},
		{name: "tag 64 runes", ok: true, mutate: func(d *yrdv1.Dataset) { d.Tags[0] = long(64, "养") }},
		{name: "tag too long", field: "tags[0]", mutate: func(d *yrdv1.Dataset) { d.Tags[0] = long(65, "养") }},
		{name: "tag duplicate", field: "tags[2]", mutate: func(d *yrdv1.Dataset) { d.Tags[2] = d.Tags[0] }, msg: "tags[0]"},

		{name: "sector missing", field: "sector", mutate: func(d *yrdv1.Dataset) { d.Sector = ""; d.CrossBorderEligible = false }},
		{name: "sector unknown", field: "sector", mutate: func(d *yrdv1.Dataset) { d.Sector = "space"; d.CrossBorderEligible = false }, msg: "civil-affairs"},
		{name: "sector other", ok: true, mutate: func(d *yrdv1.Dataset) { d.Sector = "health"; d.CrossBorderEligible = false }},

		{name: "level unspecified", field: "level", mutate: func(d *yrdv1.Dataset) { d.Level = 0; d.CrossBorderEligible = false }, msg: "GENERAL, IMPORTANT or CORE"},
		{name: "level unknown", field: "level", mutate: func(d *yrdv1.Dataset) { d.Level = 7; d.CrossBorderEligible = false }, msg: "GENERAL, IMPORTANT or CORE"},
		{name: "level core", ok: true, mutate: func(d *yrdv1.Dataset) { d.Level = yrdv1.ClassificationLevel_LEVEL_CORE; d.CrossBorderEligible = false }},

		{name: "schema missing", field: "schema", mutate: func(d *yrdv1.Dataset) { d.Schema = nil }},
		{name: "schema no columns", field: "schema.columns", mutate: func(d *yrdv1.Dataset) { d.Schema.Columns = nil }},
		{name: "schema 512 columns", ok: true, mutate: func(d *yrdv1.Dataset) { d.Schema.Columns = nCols(512) }},
		{name: "schema too many columns", field: "schema.columns", mutate: func(d *yrdv1.Dataset) { d.Schema.Columns = nCols(513) }},
		{name: "column nil", field: "schema.columns[1]", mutate: func(d *yrdv1.Dataset) { cols(d)[1] = nil }},
		{name: "column name missing", field: "schema.columns[0].name", mutate: func(d *yrdv1.Dataset) { cols(d)[0].Name = "" }},
		{name: "column name upper", field: "schema.columns[0].name", mutate: func(d *yrdv1.Dataset) { cols(d)[0].Name = "TripID" }},
		{name: "column name digit first", field: "schema.columns[0].name", mutate: func(d *yrdv1.Dataset) { cols(d)[0].Name = "1st" }},
		{name: "column name hyphen", field: "schema.columns[0].name", mutate: func(d *yrdv1.Dataset) { cols(d)[0].Name = "trip-id" }},
		{name: "column name underscore first", ok: true, mutate: func(d *yrdv1.Dataset) { cols(d)[0].Name = "_row" }},
		{name: "column name 63", ok: true, mutate: func(d *yrdv1.Dataset) { cols(d)[0].Name = long(63, "a") }},
		{name: "column name too long", field: "schema.columns[0].name", mutate: func(d *yrdv1.Dataset) { cols(d)[0].Name = long(64, "a") }},
		{name: "column name duplicate", field: "schema.columns[2].name", mutate: func(d *yrdv1.Dataset) { cols(d)[2].Name = "trip_id" }, msg: "schema.columns[0]"},
		{name: "column type missing", field: "schema.columns[2].type", mutate: func(d *yrdv1.Dataset) { cols(d)[2].Type = "" }},
		{name: "column type unknown", field: "schema.columns[2].type", mutate: func(d *yrdv1.Dataset) { cols(d)[2].Type = "float" }, msg: `"float", want one of BOOLEAN, INTEGER`},
		{name: "column type with args", field: "schema.columns[2].type", mutate: func(d *yrdv1.Dataset) { cols(d)[2].Type = "VARCHAR(20)" }},
		{name: "column type lower", ok: true, mutate: func(d *yrdv1.Dataset) { cols(d)[2].Type = "double" }},
		{name: "generalise prefix of a quasi-identifier", ok: true, mutate: func(d *yrdv1.Dataset) { cols(d)[1].Generalise = prefix(3) }},
		{name: "generalise a column that is no quasi-identifier", field: "schema.columns[0].generalise", mutate: func(d *yrdv1.Dataset) { cols(d)[0].Generalise = prefix(3) }, msg: "only a QUASI identifier"},
		{name: "generalise empty", field: "schema.columns[1].generalise", mutate: func(d *yrdv1.Dataset) { cols(d)[1].Generalise = &yrdv1.Generalisation{} }, msg: "band_width, prefix_length or truncate"},
		{name: "generalise prefix 0", field: "schema.columns[1].generalise.prefix_length", mutate: func(d *yrdv1.Dataset) { cols(d)[1].Generalise = prefix(0) }},
		{name: "generalise band of a string", field: "schema.columns[1].generalise.band_width", mutate: func(d *yrdv1.Dataset) { cols(d)[1].Generalise = band(5) }, msg: "numeric column"},
		{name: "generalise truncate a string", field: "schema.columns[1].generalise.truncate", mutate: func(d *yrdv1.Dataset) {
			cols(d)[1].Generalise = &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_Truncate{Truncate: yrdv1.DateTruncation_DATE_TRUNCATION_MONTH}}
		}, msg: "DATE or TIMESTAMP"},
		{name: "generalise band of an integer", ok: true, mutate: func(d *yrdv1.Dataset) { cols(d)[1].Type = "INTEGER"; cols(d)[1].Generalise = band(5) }},
		{name: "generalise fractional band of an integer", field: "schema.columns[1].generalise.band_width", mutate: func(d *yrdv1.Dataset) {
			cols(d)[1].Type = "INTEGER"
			cols(d)[1].Generalise = band(2.5)
		}, msg: "whole width"},
		{name: "generalise NaN band", field: "schema.columns[1].generalise.band_width", mutate: func(d *yrdv1.Dataset) {
			cols(d)[1].Type = "DOUBLE"
			cols(d)[1].Generalise = band(math.NaN())
		}},
		{name: "sum bound", ok: true, mutate: func(d *yrdv1.Dataset) { cols(d)[2].SumBound = 500 }},
		{name: "sum bound negative", field: "schema.columns[2].sum_bound", mutate: func(d *yrdv1.Dataset) { cols(d)[2].SumBound = -1 }},
		{name: "sum bound infinite", field: "schema.columns[2].sum_bound", mutate: func(d *yrdv1.Dataset) { cols(d)[2].SumBound = math.Inf(1) }},
		{name: "sum bound of a string", field: "schema.columns[0].sum_bound", mutate: func(d *yrdv1.Dataset) { cols(d)[0].SumBound = 5 }, msg: "only numeric columns"},
		{name: "personal_info unspecified", field: "schema.columns[1].personal_info", mutate: func(d *yrdv1.Dataset) { cols(d)[1].PersonalInfo = 0 }, msg: "publishers must state"},
		{name: "personal_info unknown", field: "schema.columns[1].personal_info", mutate: func(d *yrdv1.Dataset) { cols(d)[1].PersonalInfo = 9 }},
		{name: "identifier_role unknown", field: "schema.columns[1].identifier_role", mutate: func(d *yrdv1.Dataset) { cols(d)[1].IdentifierRole = 9 }},
		{name: "identifier_role unspecified", ok: true, mutate: func(d *yrdv1.Dataset) { cols(d)[0].IdentifierRole = 0 }},
		{name: "quasi identifier not personal", field: "schema.columns[1].personal_info", mutate: func(d *yrdv1.Dataset) {
			cols(d)[1].PersonalInfo = yrdv1.PersonalInfo_PERSONAL_INFO_NONE
		}, msg: "identifier of a person is personal information"},
		{name: "direct identifier not personal", field: "schema.columns[0].personal_info", mutate: func(d *yrdv1.Dataset) {
			cols(d)[0].IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_DIRECT
		}},
		{name: "direct identifier sensitive", ok: true, mutate: func(d *yrdv1.Dataset) {
			cols(d)[0].IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_DIRECT
			cols(d)[0].PersonalInfo = yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE
		}},
		{name: "column description control", field: "schema.columns[1].description", mutate: func(d *yrdv1.Dataset) { cols(d)[1].Description = "a\x1bb" }},
		{name: "column description too long", field: "schema.columns[1].description", mutate: func(d *yrdv1.Dataset) { cols(d)[1].Description = long(1001, "x") }},

		{name: "standard_schema_id empty", ok: true, mutate: func(d *yrdv1.Dataset) { d.StandardSchemaId = "" }},
		{name: "standard_schema_id no version", field: "standard_schema_id", mutate: func(d *yrdv1.Dataset) { d.StandardSchemaId = "yrd.trips" }},
		{name: "standard_schema_id upper", field: "standard_schema_id", mutate: func(d *yrdv1.Dataset) { d.StandardSchemaId = "YRD.trips.v1" }},
		{name: "standard_schema_id too long", field: "standard_schema_id", mutate: func(d *yrdv1.Dataset) { d.StandardSchemaId = long(130, "a") + ".v1" }},

		{name: "update_frequency empty", ok: true, mutate: func(d *yrdv1.Dataset) { d.UpdateFrequency = "" }},
		{name: "update_frequency unknown", field: "update_frequency", mutate: func(d *yrdv1.Dataset) { d.UpdateFrequency = "sometimes" }, msg: "realtime"},
		{name: "update_frequency case", field: "update_frequency", mutate: func(d *yrdv1.Dataset) { d.UpdateFrequency = "Daily" }},

		{name: "data_rights missing", field: "data_rights", mutate: func(d *yrdv1.Dataset) { d.DataRights = nil }},
		{name: "holder missing", field: "data_rights.holder", mutate: func(d *yrdv1.Dataset) { d.DataRights.Holder = "" }},
		{name: "holder too long", field: "data_rights.holder", mutate: func(d *yrdv1.Dataset) { d.DataRights.Holder = long(201, "局") }},
		{name: "registration_ref empty", ok: true, mutate: func(d *yrdv1.Dataset) { d.DataRights.RegistrationRef = "" }},
		{name: "registration_ref too long", field: "data_rights.registration_ref", mutate: func(d *yrdv1.Dataset) { d.DataRights.RegistrationRef = long(129, "x") }},

		{name: "purposes none", ok: true, mutate: func(d *yrdv1.Dataset) { d.PermittedPurposes = nil }},
		{name: "purposes too many", field: "permitted_purposes", mutate: func(d *yrdv1.Dataset) {
			d.PermittedPurposes = list(33, func(i int) string { return fmt.Sprint("p", i) })
		}},
		{name: "purpose empty", field: "permitted_purposes[0]", mutate: func(d *yrdv1.Dataset) { d.PermittedPurposes[0] = "" }},
		{name: "purpose not slug", field: "permitted_purposes[0]", mutate: func(d *yrdv1.Dataset) { d.PermittedPurposes[0] = "Research" }},
		{name: "purpose too long", field: "permitted_purposes[0]", mutate: func(d *yrdv1.Dataset) { d.PermittedPurposes[0] = long(65, "a") }},
		{name: "purpose duplicate", field: "permitted_purposes[1]", mutate: func(d *yrdv1.Dataset) {
			d.PermittedPurposes = append(d.PermittedPurposes, d.PermittedPurposes[0])
		}},

		{name: "cross-border important", field: "cross_border_eligible", mutate: func(d *yrdv1.Dataset) { d.Level = yrdv1.ClassificationLevel_LEVEL_IMPORTANT }, msg: "allowed only for GENERAL"},
		{name: "cross-border non-trial sector", field: "cross_border_eligible", mutate: func(d *yrdv1.Dataset) { d.Sector = "health" }, msg: "connected-vehicles, fintech, industrial-internet"},
		{name: "cross-border fintech", ok: true, mutate: func(d *yrdv1.Dataset) { d.Sector = "fintech" }},
		{name: "cross-border industrial-internet", ok: true, mutate: func(d *yrdv1.Dataset) { d.Sector = "industrial-internet" }},
		{name: "not cross-border, important", ok: true, mutate: func(d *yrdv1.Dataset) {
			d.CrossBorderEligible = false
			d.Level = yrdv1.ClassificationLevel_LEVEL_IMPORTANT
		}},

		{name: "min_group_size default", ok: true, mutate: func(d *yrdv1.Dataset) { d.MinGroupSize = 0 }},
		{name: "min_group_size raised", ok: true, mutate: func(d *yrdv1.Dataset) { d.MinGroupSize = 25 }},
		{name: "min_group_size 1000", ok: true, mutate: func(d *yrdv1.Dataset) { d.MinGroupSize = 1000 }},
		{name: "min_group_size too large", field: "min_group_size", mutate: func(d *yrdv1.Dataset) { d.MinGroupSize = 1001 }, msg: "1001 is above 1000"},
		{name: "min_group_size huge", field: "min_group_size", mutate: func(d *yrdv1.Dataset) { d.MinGroupSize = math.MaxUint32 }},

		{name: "noise_epsilon off", ok: true, mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = 0 }},
		{name: "noise_epsilon tiny", ok: true, mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = 1e-6 }},
		{name: "noise_epsilon 1", ok: true, mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = 1 }},
		{name: "noise_epsilon 10", ok: true, mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = 10 }},
		{name: "noise_epsilon above 10", field: "noise_epsilon", mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = 10.000001 }, msg: "at most 10"},
		{name: "noise_epsilon negative", field: "noise_epsilon", mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = -0.5 }, msg: "-0.5"},
		{name: "noise_epsilon NaN", field: "noise_epsilon", mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = math.NaN() }, msg: "NaN"},
		{name: "noise_epsilon infinite", field: "noise_epsilon", mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = math.Inf(1) }},
		{name: "noise_epsilon minus infinite", field: "noise_epsilon", mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon = math.Inf(-1) }},

		{name: "noise_sum_bound 0", ok: true, mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon, d.NoiseSumBound = 1, 0 }},
		{name: "noise_sum_bound set", ok: true, mutate: func(d *yrdv1.Dataset) { d.NoiseEpsilon, d.NoiseSumBound = 1, 500.5 }},
		{name: "noise_sum_bound large", ok: true, mutate: func(d *yrdv1.Dataset) { d.NoiseSumBound = 1e12 }},
		{name: "noise_sum_bound negative", field: "noise_sum_bound", mutate: func(d *yrdv1.Dataset) { d.NoiseSumBound = -1 }, msg: "finite number ≥ 0"},
		{name: "noise_sum_bound NaN", field: "noise_sum_bound", mutate: func(d *yrdv1.Dataset) { d.NoiseSumBound = math.NaN() }},
		{name: "noise_sum_bound infinite", field: "noise_sum_bound", mutate: func(d *yrdv1.Dataset) { d.NoiseSumBound = math.Inf(1) }},

		{name: "too big", field: "", mutate: func(d *yrdv1.Dataset) {
			d.Schema.Columns = nCols(512)
			for _, c := range d.Schema.Columns {
				c.Description = long(200, "x")
			}
		}, msg: "bytes encoded"},

		{name: "server fields ignored", ok: true, mutate: func(d *yrdv1.Dataset) {
			d.Version = 42
			d.CreatedAt = timestamppb.Now()
			d.Retired = true
		}},
	}
}

func TestValidateNormalises(t *testing.T) {
	d := valid()
	d.Schema.Columns[0].Type = "varchar"
	d.Schema.Columns[2].Type = "Double"
	d.Schema.Columns[2].IdentifierRole = yrdv1.IdentifierRole_IDENTIFIER_ROLE_UNSPECIFIED
	if err := Validate(d); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(d, valid()) {
		t.Errorf("normalised to %v, want %v", d, valid())
	}
	// An unknown type is left as written, so the error and the data agree.
	d.Schema.Columns[0].Type = "string"
	if Validate(d) == nil || d.Schema.Columns[0].Type != "string" {
		t.Errorf("unknown type rewritten to %q", d.Schema.Columns[0].Type)
	}
}

func TestValidateReportsAll(t *testing.T) {
	d := valid()
	d.Id = "Bad ID"
	d.OwnerCity = "beijing"
	d.Tags = []string{"ok", "Not OK", "ok"}
	d.Schema.Columns[2].Type = "FLOAT"
	d.Schema.Columns[1].PersonalInfo = 0
	d.DataRights.Holder = ""
	d.Level = yrdv1.ClassificationLevel_LEVEL_CORE
	d.MinGroupSize, d.NoiseEpsilon, d.NoiseSumBound = 5000, 11, -2
	err := Validate(d)
	want := []string{
		"id", "owner_city", "tags[1]", "tags[2]",
		"schema.columns[1].personal_info", "schema.columns[2].type",
		"data_rights.holder", "min_group_size", "noise_epsilon", "noise_sum_bound", "cross_border_eligible",
	}
	got := fieldsOf(err)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fields %q, want %q\n%v", got, want, err)
	}
	msg := err.Error()
	if n := strings.Count(msg, "; "); n < len(want)-1 {
		t.Errorf("message has %d separators for %d errors: %s", n, len(want), msg)
	}
	if !strings.HasPrefix(msg, `id: invalid id "Bad ID"`) {
		t.Errorf("message starts %q", msg[:40])
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "id" {
		t.Errorf("errors.As found %v, want the id error", fe)
	}
}

func TestValidateNil(t *testing.T) {
	if err := Validate(nil); err == nil {
		t.Fatal("nil dataset valid")
	}
	if err := Validate(&yrdv1.Dataset{}); err == nil {
		t.Fatal("empty dataset valid")
	} else {
		want := []string{"id", "owner_city", "owner_org", "title", "sector", "level", "schema", "data_rights"}
		if got := fieldsOf(err); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("fields %q, want %q", got, want)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, id := range []string{"abc", "shanghai.civil-affairs.elderly-population", "a1.b-2.c3"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "ab", "A.b", "a..b", "a.b.", ".a.b", "a_b", "a b", strings.Repeat("a", 129)} {
		err := ValidateID(id)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "id" {
			t.Errorf("ValidateID(%q) = %v, want an id FieldError", id, err)
		}
	}
}

func TestFieldErrorString(t *testing.T) {
	if got := (&FieldError{Field: "tags[3]", Msg: "bad"}).Error(); got != "tags[3]: bad" {
		t.Errorf("got %q", got)
	}
	if got := (Errors{{Field: "a", Msg: "x"}, {Msg: "y"}}).Error(); got != "a: x; y" {
		t.Errorf("got %q", got)
	}
}

func TestShowTruncates(t *testing.T) {
	d := valid()
	d.Id = strings.Repeat("A", 100)
	if err := Validate(d); err == nil || len(err.Error()) > 200 {
		t.Errorf("message for a long bad id not shortened: %v", err)
	}
}
