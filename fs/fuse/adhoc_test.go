package fusefs

import (
	"sprite/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestAdhocNullMake(t *testing.T) {
	mnt, _, _ := testMount(t)
	d := filepath.Join(mnt, "d")
	fs.TraceCalls = true
	exec.Command("sh", "-c", "mkdir "+d+"/x && cd "+d+"/x && tar xf /tmp/srctest/src.tar --no-same-owner").Run()
	fs.TraceCalls = false
	if out, err := exec.Command("sh", "-c", "cd "+d+" && tar xf /tmp/srctest/src.tar --no-same-owner && cd zlib-* && ./configure >/dev/null && make -j2 >/dev/null 2>&1").CombinedOutput(); err != nil {
		t.Fatal(string(out), err)
	}
	for range 3 {
		os.Setenv("SPRITE_TRACE", "")
		start := time.Now()
		exec.Command("sh", "-c", "cd "+d+"/zlib-* && make >/dev/null").Run()
		t.Log("null make", time.Since(start))
	}
	fs.TraceCalls = true
	exec.Command("sh", "-c", "cd "+d+"/zlib-* && make >/dev/null").Run()
	fs.TraceCalls = false
}
