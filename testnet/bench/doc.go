// Package bench measures a testnet of real yrdnode processes the way a
// city's program meets it (TLS, API keys, separate processes), optionally
// beside etcd, and writes the report.
package bench
