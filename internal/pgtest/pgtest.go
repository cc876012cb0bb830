// Package pgtest starts a real, throw-away PostgreSQL server for tests:
// initdb and pg_ctl from the installed PostgreSQL binaries, in a temporary
// directory, listening only on a Unix-domain socket in that directory (run
// as the postgres user when the tests run as root, since initdb refuses
// root). No TCP port is taken, so nothing can race another process for
// one. Only tests import it.
package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Server is a running PostgreSQL server.
type Server struct {
	dir   string // owned by the postgres user when the tests run as root
	data  string
	pgCtl string
	cred  *syscall.Credential
	// DSN connects as the superuser postgres to the database postgres.
	DSN string
}

// BinDir finds the directory of initdb, pg_ctl and postgres.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- { // newest version first
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin: " +
		"install PostgreSQL (e.g. apt-get install postgresql) to run the PostgreSQL tests; CI installs it")
}

// Start initialises and starts a server. Stop it when done.
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "yrdnode-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, data: filepath.Join(dir, "data"), pgCtl: filepath.Join(bin, "pg_ctl")}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if out, err := s.run(filepath.Join(bin, "initdb"), "-D", s.data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// listen_addresses='' : no TCP at all; the socket is dir/.s.PGSQL.5432.
	// jit=off: LLVM compiling a big plan cannot be interrupted, and on a
	// busy machine it takes seconds, which would hide whether a cancel
	// reaches the executor (the connector allows pgCancelGrace for it).
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c jit=off", dir)
	if out, err := s.run(s.pgCtl, "start", "-w", "-t", "60", "-D", s.data, "-l", filepath.Join(dir, "server.log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	s.DSN = fmt.Sprintf("host=%s user=postgres dbname=postgres sslmode=disable", dir)
	ok = true
	return s, nil
}

func (s *Server) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

// Stop stops the server at once and removes its files.
func (s *Server) Stop() {
	if out, err := s.run(s.pgCtl, "stop", "-D", s.data, "-m", "immediate", "-w"); err != nil {
		fmt.Fprintf(os.Stderr, "pg_ctl stop: %v\n%s", err, out)
	}
	os.RemoveAll(s.dir)
}
