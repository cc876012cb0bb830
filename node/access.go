package node

import (
	"net"

	"github.com/yrd-exchange/yrdnode/internal/audit"
	"github.com/yrd-exchange/yrdnode/internal/auth"
	"github.com/yrd-exchange/yrdnode/internal/fsutil"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// openAccess opens the city CA, the credential store, the audit log and
// its summariser of refusals (refusals.go). A node with no credentials at
// all creates one operator API key and writes it beside its data (mode
// 0600): the operator's way in to create the rest.
func (n *Node) openAccess() error {
	ca, err := auth.LoadOrCreateCA(n.cfg.caDir(), n.cfg.City)
	if err != nil {
		return err
	}
	if n.creds, err = auth.OpenStore(n.cfg.credsPath(), ca); err != nil {
		return err
	}
	if len(n.creds.Keys()) == 0 {
		p := &yrdv1.Principal{City: n.cfg.City, Org: n.cfg.City + "-ops", Name: "bootstrap-operator", Role: yrdv1.Role_ROLE_OPERATOR}
		_, token, err := n.creds.CreateKey(p, "node bootstrap")
		if err != nil {
			return err
		}
		// Atomically: a program waiting for the file must never read it
		// half written (a testnet of 41 cities did, and kept an empty key).
		if err := fsutil.WriteFileAtomic(n.cfg.operatorKeyPath(), []byte(token+"\n"), 0o600); err != nil {
			return err
		}
		n.log.Info("created the first operator API key", "path", n.cfg.operatorKeyPath())
	}
	key, err := n.signingKey()
	if err != nil {
		return err
	}
	if n.auditLog, err = audit.Open(n.cfg.auditPath(), key, n.id.String(), audit.Options{}); err != nil {
		return err
	}
	n.refusals = audit.NewSummariser(n.auditLog, audit.SummaryOptions{Logger: n.log})
	return nil
}

// certHosts names the hosts the API's TLS certificate is valid for: the
// listen address, and on a wildcard every local interface address.
func certHosts(apiAddr string) []string {
	host, _, _ := net.SplitHostPort(apiAddr)
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	ip := net.ParseIP(host)
	if host != "" && (ip == nil || !ip.IsUnspecified()) {
		return append(hosts, host)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return hosts
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			hosts = append(hosts, ipn.IP.String())
		}
	}
	return hosts
}
