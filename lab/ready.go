package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// exportRow is one row of `sprite exports --json`.
type exportRow struct {
	Prefix string `json:"prefix"`
	Host   string `json:"host"`
	Up     bool   `json:"up"`
}

// waitNamespace waits until every host's prefix table holds every host's
// /home export, up: only then does /sprite/home/hN resolve on every host, so
// `lab up` returns a lab whose one file tree is whole. Membership spreads by
// gossip within a heartbeat or two; this waits that out instead of letting
// the first command on a host find /sprite/home half empty.
func (l *Lab) waitNamespace(ctx context.Context) error {
	deadline := time.Now().Add(allUpTimeout)
	for _, h := range l.Hosts {
		for {
			missing, err := l.missingExports(ctx, h.Name)
			if err == nil && len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				if err == nil {
					err = fmt.Errorf("it lacks %s", strings.Join(missing, ", "))
				}
				return fmt.Errorf("%s's prefix table is not whole after %v: %w; see %s", h.Name, allUpTimeout, err, h.DaemonLog())
			}
			time.Sleep(hostsPollEvery)
		}
	}
	return nil
}

// missingExports lists the /home/hN prefixes that host does not see up.
func (l *Lab) missingExports(ctx context.Context, host string) ([]string, error) {
	out, err := l.run(ctx, host, "sprite", "exports", "--json")
	if err != nil {
		return nil, err
	}
	var rows []exportRow
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("sprite exports --json on %s: %w", host, err)
	}
	up := map[string]bool{}
	for _, r := range rows {
		up[r.Prefix] = r.Up
	}
	var missing []string
	for _, h := range l.Hosts {
		if p := "/home/" + h.Name; !up[p] {
			missing = append(missing, p)
		}
	}
	return missing, nil
}
