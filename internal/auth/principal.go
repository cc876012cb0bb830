package auth

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/yrd-exchange/yrdnode/internal/cities"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

var (
	orgPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$`)
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
)

// RoleName is the short lower-case name of a role ("analyst").
func RoleName(r yrdv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// ParseRole accepts "analyst", "ANALYST" or "ROLE_ANALYST".
func ParseRole(s string) (yrdv1.Role, error) {
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "ROLE_") {
		name = "ROLE_" + name
	}
	v, ok := yrdv1.Role_value[name]
	if !ok || v == 0 {
		return 0, fmt.Errorf("role: %q is not operator, publisher, cdo, analyst or auditor", s)
	}
	return yrdv1.Role(v), nil
}

// ValidatePrincipal checks the fields a credential is issued for.
func ValidatePrincipal(p *yrdv1.Principal) error {
	if _, ok := cities.Lookup(p.GetCity()); !ok {
		return fmt.Errorf("city: %q is not a delta city id", p.GetCity())
	}
	if !orgPattern.MatchString(p.GetOrg()) {
		return fmt.Errorf("org: %q is not an organisation slug (lower-case letters, digits and '-', 2-64 long)", p.GetOrg())
	}
	if !namePattern.MatchString(p.GetName()) {
		return fmt.Errorf("name: %q must be 1-64 letters, digits or . _ @ -", p.GetName())
	}
	if _, ok := yrdv1.Role_name[int32(p.GetRole())]; !ok || p.GetRole() == yrdv1.Role_ROLE_UNSPECIFIED {
		return fmt.Errorf("role: required (operator, publisher, cdo, analyst or auditor)")
	}
	return nil
}

// String renders a principal for logs and audit details.
func String(p *yrdv1.Principal) string {
	return fmt.Sprintf("%s/%s/%s (%s)", p.GetCity(), p.GetOrg(), p.GetName(), RoleName(p.GetRole()))
}
