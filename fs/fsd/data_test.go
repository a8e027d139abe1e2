package fsd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"sprite/fs"
	"sprite/rpc"
	"sprite/wire"
)

// serveData serves fs.readdata and fs.writedata of a server exporting a
// fresh directory as /t, over in-process streams (rpc.Pipe).
func serveData(t *testing.T) (*Service, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests act as other users and need root: sudo go test ./fs/...")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	srv, err := fs.NewServer(fs.ServerConfig{Host: "h1", Exports: []fs.Exported{{Prefix: "/t", Path: dir}},
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &Service{server: srv}, dir
}

var alice = fs.Cred{UID: 1000, GID: 1000}

// start begins one call of method with args on a pipe to s; the call's
// end of the pipe comes with it.
func (s *Service) start(t *testing.T, method string, args *fs.Req) (*rpc.ClientStream, rpc.Conn) {
	t.Helper()
	mux := rpc.NewMux()
	mux.Handle(fs.MethodReadData, s.serveRead)
	mux.Handle(fs.MethodWriteData, s.serveWrite)
	cl, sv := rpc.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		rpc.ServeStream(context.Background(), sv, rpc.Peer{Host: "h2"}, mux, wire.DefaultMaxFrame)
	}()
	t.Cleanup(func() { <-done })
	cs, err := rpc.Start(context.Background(), cl, method, args, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	return cs, cl
}

// TestWriteDataTakesExactlyWhatItAnnounced: a large write's bytes as raw
// frames reach the file; a call that brings fewer or more bytes than it
// announced is refused with a clear error and writes nothing; the bytes
// read back with fs.readdata land in the reader's room.
func TestWriteDataTakesExactlyWhatItAnnounced(t *testing.T) {
	s, dir := serveData(t)
	open, err := s.server.Serve(context.Background(), "h2", fs.MethodCreate,
		&fs.Req{Prefix: "/t", Cred: alice, Name: "f", Flags: syscall.O_RDWR, Mode: 0o644})
	if err != nil || open.Errno != 0 {
		t.Fatalf("create: %v, errno %d", err, open.Errno)
	}
	data := bytes.Repeat([]byte("sprite "), 300<<10/7)
	write := func(announce int, frames ...[]byte) (*fs.Resp, error) {
		cs, cl := s.start(t, fs.MethodWriteData, &fs.Req{Prefix: "/t", Cred: alice, Handle: open.Handle, Size: int64(announce)})
		// A pipe holds nothing: send while the reply is awaited, as a
		// QUIC stream's buffers allow.
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for _, f := range frames {
				if err := cs.SendData(f); err != nil {
					return // refused: the reply says why
				}
			}
			cs.CloseSend()
		}()
		var resp fs.Resp
		err := cs.Finish(&resp)
		cl.Abort() // a refused sender's last frames are dropped, as QUIC's STOP_SENDING does
		<-sent
		return &resp, err
	}
	for _, bad := range []struct {
		announce int
		frames   [][]byte
	}{
		{len(data), [][]byte{data[:1000]}},                 // fewer
		{1000, [][]byte{data[:1000], data[1000:1001]}},     // more
		{0, [][]byte{data[:10]}},                           // none announced
		{fs.MaxIO + 1, [][]byte{make([]byte, fs.MaxIO/2)}}, // too many
	} {
		if _, err := write(bad.announce, bad.frames...); rpc.CodeOf(err) != wire.CodeBadRequest {
			t.Errorf("announced %d: %v, want a refusal (code %d)", bad.announce, err, wire.CodeBadRequest)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); len(got) != 0 {
		t.Fatalf("refused writes left %d bytes in the file", len(got))
	}
	resp, err := write(len(data), data[:100<<10], data[100<<10:])
	if err != nil || resp.N != int64(len(data)) {
		t.Fatalf("write of %d bytes in two frames: %v, n %d", len(data), err, resp.N)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); !bytes.Equal(got, data) {
		t.Fatalf("the file holds %d bytes, not the %d written", len(got), len(data))
	}

	room := make([]byte, 256<<10)
	cs, _ := s.start(t, fs.MethodReadData, &fs.Req{Prefix: "/t", Cred: alice, Handle: open.Handle, Offset: 7, Size: int64(len(room))})
	go cs.CloseSend() // the server reads it after sending the data
	f, err := cs.RecvInto(room)
	if err != nil || !bytes.Equal(f.Payload, data[7:7+len(room)]) || &f.Payload[0] != &room[0] {
		t.Fatalf("readdata: %d bytes, %v; want the file's bytes in the room", len(f.Payload), err)
	}
	if _, err := cs.Recv(); err != io.EOF {
		t.Fatalf("after the data: %v, want the reply", err)
	}
	if err := cs.Finish(&fs.Resp{}); err != nil {
		t.Fatal(err)
	}
}
