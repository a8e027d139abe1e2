package pmake

import (
	"os"
	"reflect"
	"testing"
)

func TestParseArgs(t *testing.T) {
	cases := []struct {
		args []string
		want Options
	}{
		{[]string{"-j", "8", "all"}, Options{Jobs: 8, Local: -1, MakeArgs: []string{"all"}}},
		{[]string{"-j", "all"}, Options{Local: -1, MakeArgs: []string{"all"}}},
		{[]string{"-kj8", "-L2", "--stats"}, Options{Jobs: 8, Local: 2, Stats: true, MakeArgs: []string{"-k"}}},
		{[]string{"--export-links", "-j4"}, Options{Jobs: 4, Local: -1, ExportLinks: true}},
		{[]string{"-C", "src", "-f", "GNUmakefile", "x"}, Options{Local: -1, Dir: "src", MakeArgs: []string{"-C", "src", "-f", "GNUmakefile", "x"}}},
		{[]string{"-Csrc", "-Cdeep", "-Onone"}, Options{Local: -1, Dir: "src/deep", OutputSync: true, MakeArgs: []string{"-Csrc", "-Cdeep", "-Onone"}}},
		{[]string{"-sn", "--jobs=3", "SHELL=/bin/bash", "CC=gcc"}, Options{Jobs: 3, Local: -1, DryRun: true, Shell: "/bin/bash", MakeArgs: []string{"-sn", "CC=gcc"}}},
		{[]string{"--directory=/x", "--output-sync=line", "-l", "4"}, Options{Local: -1, Dir: "/x", OutputSync: true, MakeArgs: []string{"--directory=/x", "--output-sync=line", "-l4"}}},
		{[]string{"--", "-j", "4"}, Options{Local: -1, MakeArgs: []string{"--", "-j", "4"}}},
		{[]string{"-k", "-L", "0"}, Options{Local: 0, MakeArgs: []string{"-k"}}},
	}
	for _, c := range cases {
		got, err := ParseArgs(c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.args, got, c.want)
		}
	}
	for _, bad := range [][]string{{"-L"}, {"-jx"}, {"--local=-1"}} {
		if _, err := ParseArgs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSimpleArgvFollowsMake(t *testing.T) {
	cases := []struct {
		line string
		want []string
	}{
		{"gcc -c -O2 a.c -o a.o", []string{"gcc", "-c", "-O2", "a.c", "-o", "a.o"}},
		{"cc 'a b'  c\\ d", []string{"cc", "a b", "c d"}},
		{"cc -DX=1 a.c", []string{"cc", "-DX=1", "a.c"}},
		{"cc a.c \\\n\t  b.c", []string{"cc", "a.c", "b.c"}},
		{"echo ''", nil}, // echo is no builtin for make, but '' is an empty argument
		{"CC=gcc make", nil},
		{"cd sub", nil},
		{"exit 3", nil},
		{"echo $$HOME", nil},
		{"a; b", nil},
		{"a | b", nil},
		{"echo \"x\"", nil},
		{"ls *.c", nil},
		{"a\nb", nil},
		{"'unterminated", nil},
		{"", nil},
	}
	for _, c := range cases {
		got := SimpleArgv(c.line)
		if c.line == "echo ''" {
			if !reflect.DeepEqual(got, []string{"echo", ""}) {
				t.Errorf("%q: got %q, want [echo \"\"]", c.line, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.line, got, c.want)
		}
	}
}

func TestRunsMake(t *testing.T) {
	yes := []string{"make -C sub", "cd sub && /usr/bin/make all", "(cd x; gmake)", "FOO=1 make", "\"make\" x", "pmake -j"}
	no := []string{"gcc -c make.c", "echo making", "./configure", "cmake .."}
	for _, l := range yes {
		if !RunsMake(l, "make") {
			t.Errorf("%q: not seen as running make", l)
		}
	}
	for _, l := range no {
		if RunsMake(l, "make") {
			t.Errorf("%q: seen as running make", l)
		}
	}
	if !RunsMake("remake all", "remake") {
		t.Error("the make pmake runs, by its own name, is not recognised")
	}
}

func TestStripOneShell(t *testing.T) {
	cases := map[string]string{
		"echo a":                           "echo a",
		"echo a\n@echo b\n -echo c":        "echo a\necho b\necho c",
		"cc a \\\n  -o b":                  "cc a \\\n  -o b",
		"x=1\n\t+$(MAKE) y\necho \\\\\n@z": "x=1\n$(MAKE) y\necho \\\\\nz",
	}
	for in, want := range cases {
		if got := StripOneShell(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestReplaceShell(t *testing.T) {
	self := "/usr/local/bin/pmake"
	cases := map[string]string{
		"/usr/local/bin/pmake ./configure":  "/bin/sh ./configure",
		"x; /usr/local/bin/pmake -c 'echo'": "x; /bin/sh -c 'echo'",
		"cp /usr/local/bin/pmake2 .":        "cp /usr/local/bin/pmake2 .",
		"echo hi":                           "echo hi",
	}
	for in, want := range cases {
		if got := ReplaceShell(in, self, "/bin/sh"); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestJobsPairsRecords(t *testing.T) {
	recs := []Record{
		{Kind: "start", Job: "1", Host: "h2", Target: "a.o", At: 100},
		{Kind: "start", Job: "2", Host: Home, Target: "b.o", At: 50},
		{Kind: "end", Job: "1", Host: "h3", Ms: 1500, Status: "0"},
	}
	js := Jobs(recs)
	if len(js) != 2 || js[0].Target != "b.o" || js[0].Done || js[1].Host != "h3" || !js[1].Done || js[1].Took.Seconds() != 1.5 {
		t.Fatalf("jobs: %+v", js)
	}
	p := newProgress()
	p.add(recs)
	if got := p.text(2); got != "pmake: 2 hosts held | 1 done | running home:1" {
		t.Fatalf("status line %q", got)
	}
}

func TestStatusLineNeverMixesWithOutput(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "tty")
	if err != nil {
		t.Fatal(err)
	}
	s := newStatusLine(f)
	s.Write([]byte("cc -c a.c\n"))
	s.set("pmake: 1 done")
	s.Write([]byte("partial"))
	s.set("pmake: 2 done") // mid-line: not drawn
	s.Write([]byte(" line\n"))
	s.set("pmake: 3 done")
	s.clear()
	s.set("pmake: 4 done") // after clear: never again
	b, _ := os.ReadFile(f.Name())
	want := "cc -c a.c\n\r\033[Kpmake: 1 done\r\033[Kpartial line\n\r\033[Kpmake: 3 done\r\033[K"
	if string(b) != want {
		t.Fatalf("terminal got %q\nwant %q", b, want)
	}
}
