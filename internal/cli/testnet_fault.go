package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/yrd-exchange/yrdnode/testnet/chaos"
)

const faultUsage = "fault kill|restart|stop|cont CITY|leader; partition CITY[,CITY...]|leader; cut FROM TO; loss CITY PERCENT; delay CITY MS; heal; restart-all"

func runTestnetFault(fs *pflag.FlagSet, env Env, cf *clientFlags) runFunc {
	dir := testnetDirFlag(fs)
	return func(ctx context.Context, pos []string) error {
		if len(pos) == 0 {
			return usageError{"testnet " + faultUsage}
		}
		t, err := chaos.Open(*dir, testnetLogger(env), cf.peopleOut(env))
		if err != nil {
			return err
		}
		defer t.Close()
		if err := doFault(ctx, t, pos[0], pos[1:]); err != nil {
			return err
		}
		if cf.output == "json" {
			return printValue(env.Stdout, testnetDoneJSON{OK: true, Dir: *dir, Fault: pos[0], Args: pos[1:]})
		}
		return nil
	}
}

// cityArg resolves a city id, or "leader", to an index.
func cityArg(ctx context.Context, t *chaos.Testnet, s string) (int, error) {
	if s == "leader" {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return t.Procs.Leader(lctx)
	}
	i, err := t.State.CityIndex(s)
	if err != nil {
		return -1, usageError{err.Error()}
	}
	return i, nil
}

func doFault(ctx context.Context, t *chaos.Testnet, kind string, args []string) error {
	want := map[string]int{"kill": 1, "restart": 1, "stop": 1, "cont": 1, "partition": 1, "cut": 2, "loss": 2, "delay": 2, "heal": 0, "restart-all": 0}
	n, ok := want[kind]
	if !ok || len(args) != n {
		return usageError{fmt.Sprintf("testnet %s", faultUsage)}
	}
	if kind == "heal" {
		return t.Heal()
	}
	if kind == "restart-all" {
		return t.RestartAll()
	}
	if kind == "partition" {
		var group []int
		for _, s := range strings.Split(args[0], ",") {
			i, err := cityArg(ctx, t, s)
			if err != nil {
				return err
			}
			group = append(group, i)
		}
		return t.Partition(group)
	}
	i, err := cityArg(ctx, t, args[0])
	if err != nil {
		return err
	}
	switch kind {
	case "kill":
		return t.Kill(i)
	case "restart":
		return t.Restart(i)
	case "stop":
		return t.Pause(i)
	case "cont":
		return t.Resume(i)
	case "cut":
		j, err := cityArg(ctx, t, args[1])
		if err != nil {
			return err
		}
		return t.CutOneWay(i, j)
	}
	v, err := strconv.Atoi(args[1])
	if err != nil || v < 0 {
		return usageError{fmt.Sprintf("%s: %q is not a non-negative number", kind, args[1])}
	}
	if kind == "loss" {
		return t.Loss(i, v)
	}
	return t.Delay(i, v)
}
