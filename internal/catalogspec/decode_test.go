package catalogspec

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

const yamlShort = `# Lingang trips, as a publisher would write them.
id: shanghai.connected-vehicles.lingang-trips
owner_city: shanghai
owner_org: lingang-ica
title: 临港智能网联汽车行程 Lingang connected-car trips
description: |-
  Trips of connected test vehicles.
  	Vehicle ids are pseudonymous.
tags: [临港, connected-vehicles, mobility_2024]
sector: connected-vehicles
level: general
schema:
  columns:
    - {name: trip_id, type: VARCHAR, personal_info: NONE, identifier_role: none}
    - name: vehicle_id
      type: VARCHAR
      personal_info: Personal
      identifier_role: QUASI
      description: Pseudonymous.
    - name: distance_km
      type: DOUBLE
      personal_info: PERSONAL_INFO_NONE
      identifier_role: IDENTIFIER_NONE
standard_schema_id: yrd.connected-car-trips.v2
update_frequency: daily
data_rights:
  holder: 上海临港智能网联汽车研究中心
  processing_use_right: true
  registration_ref: SHDE-2024-000457
permitted_purposes:
  - autonomous-driving-research
cross_border_eligible: true
`

func TestDecodeYAMLShortEnums(t *testing.T) {
	d, err := DecodeDataset([]byte(yamlShort))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(d, valid()) {
		t.Errorf("decoded\n%v\nwant\n%v", d, valid())
	}
}

func TestDecodeJSONFullNames(t *testing.T) {
	js := `{
	  "id": "shanghai.connected-vehicles.lingang-trips",
	  "owner_city": "shanghai", "owner_org": "lingang-ica",
	  "title": "临港智能网联汽车行程 Lingang connected-car trips",
	  "description": "Trips of connected test vehicles.\n\tVehicle ids are pseudonymous.",
	  "tags": ["\u4e34\u6e2f", "connected-vehicles", "mobility_2024"],
	  "sector": "connected-vehicles", "level": "LEVEL_GENERAL",
	  "schema": {"columns": [
	    {"name": "trip_id", "type": "VARCHAR", "personal_info": "PERSONAL_INFO_NONE", "identifier_role": "IDENTIFIER_NONE"},
	    {"name": "vehicle_id", "type": "VARCHAR", "personal_info": "PERSONAL_INFO_PERSONAL", "identifier_role": "IDENTIFIER_QUASI", "description": "Pseudonymous."},
	    {"name": "distance_km", "type": "DOUBLE", "personal_info": "PERSONAL_INFO_NONE", "identifier_role": "IDENTIFIER_NONE"}
	  ]},
	  "standard_schema_id": "yrd.connected-car-trips.v2", "update_frequency": "daily",
	  "data_rights": {"holder": "上海临港智能网联汽车研究中心", "processing_use_right": true, "registration_ref": "SHDE-2024-000457"},
	  "permitted_purposes": ["autonomous-driving-research"], "cross_border_eligible": true
	}`
	d, err := DecodeDataset([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(d, valid()) {
		t.Errorf("decoded\n%v\nwant\n%v", d, valid())
	}
}

func TestDecodeCamelCase(t *testing.T) {
	y := `
id: hangzhou.fintech.credit
ownerCity: hangzhou
ownerOrg: hz-big-data
title: credit
sector: fintech
level: IMPORTANT
standardSchemaId: yrd.credit.v1
updateFrequency: monthly
schema:
  columns:
    - {name: score, type: integer, personalInfo: sensitive_personal, identifierRole: direct}
dataRights: {holder: 杭州, productOperationRight: true, registrationRef: ZJ-1}
permittedPurposes: [credit-assessment]
crossBorderEligible: false
`
	d, err := DecodeDataset([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	want := &yrdv1.Dataset{
		Id: "hangzhou.fintech.credit", OwnerCity: "hangzhou", OwnerOrg: "hz-big-data",
		Title: "credit", Sector: "fintech", Level: yrdv1.ClassificationLevel_LEVEL_IMPORTANT,
		StandardSchemaId: "yrd.credit.v1", UpdateFrequency: "monthly",
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{{
			Name: "score", Type: "integer",
			PersonalInfo:   yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE,
			IdentifierRole: yrdv1.IdentifierRole_IDENTIFIER_DIRECT,
		}}},
		DataRights:        &yrdv1.DataRights{Holder: "杭州", ProductOperationRight: true, RegistrationRef: "ZJ-1"},
		PermittedPurposes: []string{"credit-assessment"},
	}
	if !proto.Equal(d, want) {
		t.Errorf("decoded\n%v\nwant\n%v", d, want)
	}
	if err := Validate(d); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // regexp the error must match
		field    string // if set, the error must be a *FieldError for it
	}{
		{"unknown field", "id: a.b\ntitel: x\n", `titel: unknown field, want one of id, owner_city`, "titel"},
		{"unknown nested field", "schema:\n  columns:\n    - name: a\n      nmae: b\n", `schema\.columns\[0\]\.nmae: unknown field, want one of name, type`, "schema.columns[0].nmae"},
		{"unknown json field", `{"id": "a.b", "owner": "x"}`, `owner: unknown field`, "owner"},
		{"malformed yaml", "id: a.b\ntitle: [x\nsector: y\n", `line \d+`, ""},
		{"bad indentation", "id: a.b\n  title: x\n", `yaml: line 2`, ""},
		{"tab indentation", "schema:\n\tcolumns: []\n", `line 2`, ""},
		{"duplicate yaml key", "id: a.b\nid: c.d\n", `already (defined|set)`, ""},
		{"duplicate json key", `{"id": "a.b", "id": "c.d"}`, `duplicate key "id"`, ""},
		{"both spellings", `{"owner_city": "a", "ownerCity": "b"}`, `owner`, ""},
		{"unknown level", "level: HIGH\n", `level: unknown value "HIGH", want GENERAL, IMPORTANT or CORE`, "level"},
		{"unknown personal_info", "schema: {columns: [{personal_info: secret}]}\n", `schema\.columns\[0\]\.personal_info: unknown value "secret", want NONE, PERSONAL or SENSITIVE`, "schema.columns[0].personal_info"},
		{"unknown role", "schema: {columns: [{identifier_role: indirect}]}\n", `want NONE, DIRECT or QUASI`, "schema.columns[0].identifier_role"},
		{"level as bool", "level: yes\n", `level: want GENERAL`, "level"},
		{"number tag", "tags: [elderly, 2024]\n", `tags\[1\]: want a string, got the number 2024 \(in YAML, quote it\)`, "tags[1]"},
		{"bool string", "owner_org: no\n", `owner_org: want a string`, "owner_org"},
		{"tags scalar", "tags: elderly\n", `tags: want a list`, "tags"},
		{"schema list", "schema: [a]\n", `schema: want a mapping`, "schema"},
		{"null in list", "tags: [a, null]\n", `tags\[1\]: null`, "tags[1]"},
		{"bool field string", "cross_border_eligible: maybe\n", `cross_border_eligible: want true or false`, "cross_border_eligible"},
		{"bad version", "version: abc\n", `version`, ""},
		{"bad timestamp", "created_at: yesterday\n", `created_at|Timestamp`, ""},
		{"not a mapping", "- a\n- b\n", `want a mapping`, ""},
		{"scalar", "hello\n", `want a mapping`, ""},
		{"empty", "", `empty`, ""},
		{"comment only", "# nothing\n", `empty`, ""},
		{"bad utf8", "title: \xff\n", `UTF-8`, ""},
		{"two documents", "id: a.b\n---\nid: c.d\n", `more than one document`, ""},
		{"document end then more", "id: a.b\n...\nid: c.d\n", `line`, ""},
		{"trailing json", `{"id": "a.b"} {"id": "c.d"}`, `line|JSON|did not find`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := DecodeDataset([]byte(tc.in))
			if err == nil {
				t.Fatalf("decoded %v, want error", d)
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("error %q does not match %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "(line 1:") || strings.Contains(err.Error(), "proto:") {
				t.Errorf("error %q leaks a position in re-encoded JSON", err)
			}
			if tc.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Errorf("error %q: want a FieldError for %q", err, tc.field)
				}
			}
		})
	}
}

func TestDecodeDocumentMarkers(t *testing.T) {
	for _, in := range []string{"---\nid: a.b\n", "id: a.b\n...\n", "id: a.b\n---\n", "---\nid: a.b\n---\n# trailing comment\n"} {
		d, err := DecodeDataset([]byte(in))
		if err != nil || d.GetId() != "a.b" {
			t.Errorf("DecodeDataset(%q) = %v, %v", in, d, err)
		}
	}
}

func TestDecodeTooLarge(t *testing.T) {
	big := "description: " + strings.Repeat("x", maxDecodeBytes) + "\n"
	if _, err := DecodeDataset([]byte(big)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("got %v, want a size error", err)
	}
}

// TestDecodeRoundTrip checks the CLI contract: what `dataset get -o json`
// prints, `dataset publish -f` accepts unchanged.
func TestDecodeRoundTrip(t *testing.T) {
	ds := append(sample.Datasets(), valid())
	full := valid()
	full.Id = "shanghai.full"
	full.Version = 7
	full.CreatedAt = timestamppb.Now()
	full.UpdatedAt = timestamppb.Now()
	full.Retired = true
	full.RetiredAt = timestamppb.Now()
	full.Description = "quotes \" back\\slash <html> & \u2028 emoji 😀 \t tab\nnewline"
	full.MinGroupSize, full.NoiseEpsilon, full.NoiseSumBound = 25, 0.5, 1e4
	ds = append(ds, full, &yrdv1.Dataset{})
	for _, d := range ds {
		for _, opts := range []protojson.MarshalOptions{
			{},
			{Multiline: true},
			{UseProtoNames: true, Multiline: true, Indent: "  "},
			{EmitUnpopulated: true},
		} {
			js, err := opts.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeDataset(js)
			if err != nil {
				t.Fatalf("%s: decoding %s: %v", d.GetId(), js, err)
			}
			if !proto.Equal(got, d) {
				t.Errorf("%s: round trip via %s\ngot  %v\nwant %v", d.GetId(), js, got, d)
			}
		}
	}
}

// TestDecodeRefusesEnumNumbers: only names are valid for an enum; level: 3
// was taken as CORE. protojson prints names unless told otherwise, and the
// CLI never tells it otherwise, so refusing numbers breaks no round trip.
func TestDecodeRefusesEnumNumbers(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"level: 3\n", "level: want GENERAL, IMPORTANT or CORE, got the number 3 (write the name)"},
		{`{"level": 1}`, "level: want GENERAL, IMPORTANT or CORE, got the number 1"},
		{"schema: {columns: [{name: a, personal_info: 2}]}\n", "schema.columns[0].personal_info: want NONE, PERSONAL or SENSITIVE, got the number 2"},
	} {
		_, err := DecodeDataset([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
	js, err := protojson.MarshalOptions{UseEnumNumbers: true}.Marshal(valid())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeDataset(js); err == nil || !strings.Contains(err.Error(), "got the number") {
		t.Errorf("enum numbers as protojson writes them with UseEnumNumbers: %v, want refused", err)
	}
}

// TestDecodeJSONFileStrictly: a .json file that is not JSON is not read
// as YAML, and its error says where it breaks; YAML files and standard
// input are read as before.
func TestDecodeJSONFileStrictly(t *testing.T) {
	js, err := protojson.MarshalOptions{Multiline: true}.Marshal(valid())
	if err != nil {
		t.Fatal(err)
	}
	broken := "{\n  \"id\": \"shanghai.x.y\",,\n  \"level\": \"CORE\"\n}\n" // a stray comma on line 2
	_, err = DecodeDatasetFile("trips.json", []byte(broken))
	if err == nil || !strings.Contains(err.Error(), "parsing dataset JSON: line 2, column 24") {
		t.Fatalf("broken .json: %v, want a JSON error with its line and column", err)
	}
	// Valid YAML that is not JSON: refused in a .json file...
	yamlDoc := "id: shanghai.x.y # a comment\n"
	if _, err := DecodeDatasetFile("d.JSON", []byte(yamlDoc)); err == nil || !strings.Contains(err.Error(), "parsing dataset JSON: line 1, column 1") {
		t.Fatalf("YAML in a .JSON file: %v, want refused as JSON", err)
	}
	// ...read as YAML elsewhere.
	for _, name := range []string{"d.yaml", "d.yml", "-"} {
		if _, err := DecodeDatasetFile(name, append(js, "\n# edited\n"...)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := DecodeDatasetFile("d.json", js); err != nil {
		t.Fatalf("valid .json: %v", err)
	}
	if _, err := DecodeDatasetFile("d.json", []byte(`{"id": "a"`)); err == nil || !strings.Contains(err.Error(), "line 1, column 10: unexpected end of JSON input") {
		t.Fatalf("truncated .json: %v", err)
	}
}

// TestDecodeYAMLOfSamples checks that the JSON form, read as YAML by a
// human who re-indented it, still decodes: YAML is a superset of JSON.
func TestDecodeYAMLFlowOfSamples(t *testing.T) {
	for _, d := range sample.Datasets() {
		js, err := protojson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		// A trailing comment makes the document invalid JSON but valid
		// YAML, forcing the YAML path.
		got, err := DecodeDataset(append(js, "\n# edited\n"...))
		if err != nil {
			t.Fatalf("%s: %v", d.GetId(), err)
		}
		if !proto.Equal(got, d) {
			t.Errorf("%s: got %v", d.GetId(), got)
		}
	}
}

func TestProtojsonPosStripped(t *testing.T) {
	for _, in := range []string{"proto: (line 1:18): x", "proto:\u00a0(line 1:18): x", "proto: x", "proto:\u00a0x"} {
		if got := protojsonPosRE.ReplaceAllString(in, ""); got != "x" {
			t.Errorf("%q → %q, want %q", in, got, "x")
		}
	}
}

func TestDecodeDeepNesting(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("[", 200000) + strings.Repeat("]", 200000),
		strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000),
		"schema: " + strings.Repeat("[", 200000),
	} {
		if _, err := DecodeDataset([]byte(in)); err == nil {
			t.Errorf("deeply nested input of %d bytes decoded", len(in))
		}
	}
}

// A column's generalisation and sum bound decode from YAML, with the
// truncation written short and in any case.
func TestDecodeGeneralisation(t *testing.T) {
	d, err := DecodeDataset([]byte(`schema:
  columns:
    - {name: age, type: INTEGER, personal_info: PERSONAL, identifier_role: QUASI, generalise: {band_width: 5}, sum_bound: 120}
    - {name: born, type: DATE, personal_info: PERSONAL, identifier_role: QUASI, generalise: {truncate: month}}
    - {name: grid, type: VARCHAR, personal_info: PERSONAL, identifier_role: QUASI, generalise: {prefix_length: 3}}
exact_aggregates: true
`))
	if err != nil {
		t.Fatal(err)
	}
	cs := d.GetSchema().GetColumns()
	if cs[0].GetGeneralise().GetBandWidth() != 5 || cs[0].GetSumBound() != 120 ||
		cs[1].GetGeneralise().GetTruncate() != yrdv1.DateTruncation_DATE_TRUNCATION_MONTH ||
		cs[2].GetGeneralise().GetPrefixLength() != 3 || !d.GetExactAggregates() {
		t.Fatalf("decoded %v", d)
	}
	if _, err := DecodeDataset([]byte("schema: {columns: [{generalise: {truncate: week}}]}\n")); err == nil || !strings.Contains(err.Error(), "MONTH or YEAR") {
		t.Fatalf("truncate: week decoded, err %v", err)
	}
}
