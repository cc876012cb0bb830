package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// adminServer is the node's admin listener: Prometheus /metrics, /healthz
// and, when enabled, /debug/pprof. It serves HTTPS with the node's
// certificate from the city CA, like the client API, so a scraper checks
// it with the same ca.pem (and the console to come can live here).
type adminServer struct {
	srv  *http.Server
	addr string
	done chan struct{} // closed when Serve has returned
	log  *slog.Logger
}

// serveAdmin starts the admin listener on Config.AdminAddr; "" disables it.
func (n *Node) serveAdmin() error {
	if n.cfg.AdminAddr == "" {
		return nil
	}
	lis, err := net.Listen("tcp", n.cfg.AdminAddr)
	if err != nil {
		if n.cfg.AdminAddrOptional {
			n.log.Warn("admin listener (metrics, health) not started: its default address is taken; give each node on this host its own",
				"addr", n.cfg.AdminAddr, "err", err)
			return nil
		}
		return fmt.Errorf("admin listener: %w", err)
	}
	tlsCfg, err := n.creds.CA().ServerTLS(certHosts(lis.Addr().String()))
	if err != nil {
		lis.Close()
		return err
	}
	// The API's config speaks only gRPC's h2; scrapers speak HTTP/1.1 too.
	tlsCfg.NextProtos = []string{"h2", "http/1.1"}
	a := &adminServer{addr: lis.Addr().String(), done: make(chan struct{}), log: n.log}
	a.srv = &http.Server{
		Handler:           n.adminHandler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return n.base },
	}
	go func() { // owned by a: close waits for it
		defer close(a.done)
		if err := a.srv.ServeTLS(lis, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("admin listener stopped", "err", err)
		}
	}()
	n.admin = a
	return nil
}

// adminHandler routes the admin listener. pprof is mounted only when
// enabled: profiles show memory, and a CPU profile costs the node.
func (n *Node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn), Registry: n.metrics.reg}))
	mux.HandleFunc("GET /healthz", n.healthz)
	mux.Handle("/", n.console.Handler())
	if n.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// healthz answers 200 while the gRPC health service says SERVING, and 503
// with the status otherwise (no leader, storage failed, stopping).
func (n *Node) healthz(w http.ResponseWriter, r *http.Request) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if resp, err := n.health.Check(r.Context(), &healthpb.HealthCheckRequest{}); err == nil {
		st = resp.GetStatus()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if st != healthpb.HealthCheckResponse_SERVING {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, st)
}

// close stops the listener, letting a scrape in flight finish for a
// moment. Safe on a nil adminServer (the listener was disabled).
func (a *adminServer) close() error {
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = a.srv.Close()
	}
	<-a.done
	return err
}

// AdminAddr is the address the admin listener is bound to (the real port
// when the configured one was 0), or "" when it is not running.
func (n *Node) AdminAddr() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.addr
}
