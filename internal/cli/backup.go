package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/yrd-exchange/yrdnode/internal/backupfile"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
)

// printValue prints JSON the CLI composes itself (not an API message):
// numbers, 64-bit ones too, as JSON numbers.
func printValue(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(data))
	return err
}

func runBackup(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	out := fs.StringP("file", "f", "", "write the backup to this file (required)")
	return func(ctx context.Context, _ []string) error {
		if *out == "" {
			return usageError{"backup needs -f FILE"}
		}
		return withCluster(ctx, cf, func(ctx context.Context, c yrdv1grpc.ClusterServiceClient) error {
			h, err := backupTo(ctx, env, cf, c, *out)
			if err != nil {
				return err
			}
			return printBackupHeader(env, cf, *out, h)
		})
	}
}

// backupTo streams the node's backup into path, whole and checked as
// restore will check it or not at all, showing the bytes received so far
// on a terminal.
func backupTo(ctx context.Context, env Env, cf *clientFlags, c yrdv1grpc.ClusterServiceClient, path string) (backupfile.Header, error) {
	stream, err := c.Backup(ctx, &yrdv1.BackupRequest{})
	if err != nil {
		return backupfile.Header{}, cf.callErr(err)
	}
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return backupfile.Header{}, err
	}
	defer os.Remove(tmp)
	var size atomic.Int64
	stop := startProgress(env, func() string { return fmt.Sprintf("backup: %s received", byteCount(size.Load())) })
	err = receiveBackup(cf, stream, f, &size)
	stop()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return backupfile.Header{}, err
	}
	h, err := checkBackupFile(tmp)
	if err != nil {
		return backupfile.Header{}, err
	}
	return h, os.Rename(tmp, path)
}

func receiveBackup(cf *clientFlags, stream interface {
	Recv() (*yrdv1.BackupChunk, error)
}, w io.Writer, size *atomic.Int64) error {
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return cf.callErr(err)
		}
		n, err := w.Write(chunk.GetData())
		size.Add(int64(n))
		if err != nil {
			return err
		}
	}
}

// byteCount is n bytes for people: 512 B, 3.4 MB.
func byteCount(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
