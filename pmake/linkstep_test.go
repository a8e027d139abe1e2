package pmake

import "testing"

func TestIsLinkStep(t *testing.T) {
	for _, c := range []struct {
		line string
		want bool
	}{
		// Lua's own lines.
		{"gcc -std=gnu99 -o lua   lua.o liblua.a -lm -Wl,-E -ldl", true},
		{"ar rcu liblua.a lapi.o lcode.o", true},
		{"ranlib liblua.a", true},
		{"gcc -std=gnu99 -O2 -Wall -DLUA_USE_LINUX -c -o lvm.o lvm.c", false},
		// Other spellings of the same tools.
		{"/usr/bin/x86_64-linux-gnu-gcc-14 -o prog a.o b.o", true},
		{"clang++-19 -shared -o libx.so a.o", true},
		{"x86_64-linux-gnu-ar rcs libx.a a.o", true},
		{"ld -r -o all.o a.o b.o", true},
		{"ld.gold -o prog a.o", true},
		// Compiles, even when they also link, and what only looks alike.
		{"cc -o prog prog.c", false},
		{"g++ -S x.cpp", false},
		{"gcc -E -P x.h", false},
		{"gcc -MM x.c", false},
		{"gccgo -o prog prog.o", false},
		{"cargo build", false},
		{"archive-tool x.a", false},
		// A line that needs a shell is not looked at.
		{"gcc -o prog a.o && strip prog", false},
		{"@echo LD prog; gcc -o prog a.o", false},
		{"", false},
	} {
		if got := IsLinkStep(c.line); got != c.want {
			t.Errorf("IsLinkStep(%q) = %v, want %v", c.line, got, c.want)
		}
	}
}
