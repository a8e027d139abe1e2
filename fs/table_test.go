package fs

import (
	"log/slog"
	"reflect"
	"testing"
)

func TestRouteLongestPrefix(t *testing.T) {
	tb := NewTable(slog.New(slog.DiscardHandler))
	tb.Set("h1", []Exported{{"/home/h1", "/home"}, {"/proj", "/srv/proj"}}, true)
	tb.Set("h2", []Exported{{"/proj/x", "/x"}, {"/home/h2", "/home"}, {"/hosts/evil", "/"}}, false)
	for p, want := range map[string]Route{
		"/":                {Kind: RouteVirtual},
		"/home":            {Kind: RouteVirtual},
		"/home/h1":         {Kind: RouteDomain, Domain: Domain{"/home/h1", "h1", "/home", true, ""}, Rel: ""},
		"/home/h1/alice/f": {Kind: RouteDomain, Domain: Domain{"/home/h1", "h1", "/home", true, ""}, Rel: "alice/f"},
		"/home/h10":        {Kind: RouteNone},
		"/proj":            {Kind: RouteDomain, Domain: Domain{"/proj", "h1", "/srv/proj", true, ""}, Rel: ""},
		"/proj/y":          {Kind: RouteDomain, Domain: Domain{"/proj", "h1", "/srv/proj", true, ""}, Rel: "y"},
		"/proj/x/z":        {Kind: RouteDomain, Domain: Domain{"/proj/x", "h2", "/x", false, ""}, Rel: "z"},
		"/hosts/h1/state":  {Kind: RouteHosts, Rel: "h1/state"},
		"/proc":            {Kind: RouteProc},
		"/proc/h1.12/ctl":  {Kind: RouteProc, Rel: "h1.12/ctl"},
		"/procs":           {Kind: RouteNone},
		"/nowhere":         {Kind: RouteNone},
	} {
		if got := tb.Route(p); !reflect.DeepEqual(got, want) {
			t.Errorf("Route(%q) = %+v, want %+v", p, got, want)
		}
	}
	if got := tb.Children("/"); !reflect.DeepEqual(got, []string{"home", "hosts", "proc", "proj"}) {
		t.Errorf("Children(/) = %v", got)
	}
	if got := tb.Children("/proj"); !reflect.DeepEqual(got, []string{"x"}) {
		t.Errorf("Children(/proj) = %v", got)
	}
	// Down, then withdrawn.
	tb.SetUp("h1", false)
	if r := tb.Route("/home/h1"); r.Domain.Up {
		t.Error("h1 still up")
	}
	tb.Set("h1", nil, true)
	if r := tb.Route("/home/h1/a"); r.Kind != RouteNone {
		t.Errorf("withdrawn prefix still routed: %+v", r)
	}
	// Conflicts: the smaller host name wins.
	tb.Set("h3", []Exported{{"/home/h2", "/other"}}, true)
	tb.Set("h0", []Exported{{"/home/h2", "/mine"}}, true)
	if r := tb.Route("/home/h2"); r.Domain.Host != "h0" || r.Domain.Shadowed == "" {
		t.Errorf("conflict: %+v", r)
	}
}
