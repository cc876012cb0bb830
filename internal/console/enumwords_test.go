package console

import (
	"strings"
	"testing"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// TestEveryEnumWordInBothLanguages: the keys the pages build from the
// API's enums (which TestEveryWordInBothLanguages cannot see in the
// source) are in both languages, for every value each enum has.
func TestEveryEnumWordInBothLanguages(t *testing.T) {
	keys := map[string]bool{}
	for v := range yrdv1.CityStatus_name {
		keys[statusKey(yrdv1.CityStatus(v))] = true
	}
	for v := range yrdv1.Effect_name {
		keys[effectKey(yrdv1.Effect(v))] = true
	}
	for v := range yrdv1.ClassificationLevel_name {
		keys[levelKey(yrdv1.ClassificationLevel(v))] = true
		keys[catalogLevel(yrdv1.ClassificationLevel(v)).Key] = true
	}
	for v := range yrdv1.ColumnTreatment_name {
		keys[treatmentKey(yrdv1.ColumnTreatment(v))] = true
	}
	for v := range yrdv1.PersonalInfo_name {
		keys[personalInfoKey(yrdv1.PersonalInfo(v))] = true
	}
	for v := range yrdv1.IdentifierRole_name {
		keys[identifierKey(yrdv1.IdentifierRole(v))] = true
	}
	for v, name := range yrdv1.ResultForm_name {
		keys[resultFormKey(yrdv1.ResultForm(v))] = true
		keys["grants.form_"+strings.ToLower(strings.TrimPrefix(name, "RESULT_FORM_"))] = true
	}
	for v := range yrdv1.GrantState_name {
		key, _ := grantStateWords(yrdv1.GrantState(v))
		keys[key] = true
	}
	for _, st := range append(append([]string{}, grantStates...), "expired") {
		keys["grants.state_"+st] = true
	}
	for v := range yrdv1.Suffrage_name {
		keys[suffrageKey(yrdv1.Suffrage(v))] = true
	}
	for key := range keys {
		for _, lang := range languages {
			if _, ok := messages[lang][key]; !ok {
				t.Errorf("%s has no %q", lang, key)
			}
		}
	}
}
