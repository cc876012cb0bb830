package catalogspec

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/yrd-exchange/yrdnode/internal/sample"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

func seedDocuments(f *testing.F) {
	for _, d := range append(sample.Datasets(), valid()) {
		js, err := protojson.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
		f.Add(append(js, "\n# yaml\n"...))
	}
	f.Add([]byte(yamlShort))
	for _, s := range []string{
		"", "null", "[]", "{}", "- a\n", "id: [\n", "id: a\n---\nid: b\n",
		"level: HIGH\n", "tags: [1, true, null]\n", "schema: {columns: [{personal_info: 7}]}\n",
		"a: &a [*a]\n", "created_at: 2024-01-01\n", "version: -1\n", `{"id": "a", "id": "b"}`,
		"title: \"\\ud800\"\n", `{"title": "\ud83d\ude00"}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecodeDataset checks that decoding never panics and that whatever it
// accepts survives the protojson round trip the CLI relies on.
func FuzzDecodeDataset(f *testing.F) {
	seedDocuments(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDataset(data)
		if err != nil {
			if d != nil {
				t.Fatal("non-nil dataset with an error")
			}
			return
		}
		_ = Validate(proto.Clone(d).(*yrdv1.Dataset))
		js, err := protojson.Marshal(d)
		if err != nil {
			t.Fatalf("marshal decoded dataset: %v", err)
		}
		back, err := DecodeDataset(js)
		if err != nil {
			t.Fatalf("decoding %s: %v", js, err)
		}
		if !proto.Equal(d, back) {
			t.Fatalf("round trip changed %v to %v", d, back)
		}
	})
}

// FuzzValidate checks that Validate never panics on any dataset the wire
// format can carry, that normalising is idempotent, and that a valid
// dataset is within the limits.
func FuzzValidate(f *testing.F) {
	for _, d := range append(sample.Datasets(), valid(), &yrdv1.Dataset{}) {
		b, err := proto.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	broken := valid()
	broken.Id = "Bad"
	broken.Level = 9
	broken.Schema.Columns[0].Type = "int"
	broken.Schema.Columns[1].PersonalInfo = 0
	broken.Schema.Columns[2].IdentifierRole = 7
	broken.Tags = append(broken.Tags, "UP", "臨港", broken.Tags[0])
	b, _ := proto.Marshal(broken)
	f.Add(b)
	f.Add([]byte{0x0a, 0x01}) // truncated
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &yrdv1.Dataset{}
		if proto.Unmarshal(data, d) != nil {
			return
		}
		err := Validate(d)
		if err == nil {
			if proto.Size(d) > MaxDatasetBytes {
				t.Fatal("valid dataset over MaxDatasetBytes")
			}
			for _, c := range d.GetSchema().GetColumns() {
				if c.GetType() != strings.ToUpper(c.GetType()) || c.GetIdentifierRole() == yrdv1.IdentifierRole_IDENTIFIER_ROLE_UNSPECIFIED {
					t.Fatalf("column %v not normalised", c)
				}
			}
			if ValidateID(d.GetId()) != nil {
				t.Fatal("valid dataset with invalid id")
			}
		} else if es, ok := err.(Errors); !ok || len(es) == 0 {
			t.Fatalf("error %T %v is not a non-empty Errors", err, err)
		}
		// Validating the normalised dataset again finds the same problems
		// and changes nothing more.
		once := proto.Clone(d)
		err2 := Validate(d)
		if !proto.Equal(once, d) {
			t.Fatal("second Validate changed the dataset")
		}
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Validate not idempotent: %v then %v", err, err2)
		}
	})
}
