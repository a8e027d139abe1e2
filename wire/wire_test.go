package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	payloads := [][]byte{nil, []byte("x"), bytes.Repeat([]byte{0xff}, 70000)}
	for _, p := range payloads {
		if err := WriteFrame(&buf, FrameData, p, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range payloads {
		f, err := ReadFrame(&buf, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != FrameData || !bytes.Equal(f.Payload, p) {
			t.Fatalf("got type %d, %d bytes; want %d bytes", f.Type, len(f.Payload), len(p))
		}
	}
	if _, err := ReadFrame(&buf, 0); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

// TestBulkFrameIsTheSameFrame: a payload of bulkFrame bytes or more is
// written as two writes (header, payload) and must give the same bytes as
// the one-buffer path; ReadFrameInto puts a payload that fits into the
// room it is given and one that does not into a buffer of its own.
func TestBulkFrameIsTheSameFrame(t *testing.T) {
	p := bytes.Repeat([]byte("0123456789"), bulkFrame/10+1)
	var split, whole bytes.Buffer
	if err := WriteFrame(&split, FrameData, p, 0); err != nil {
		t.Fatal(err)
	}
	whole.Write([]byte{Magic, Version, FrameData, 0, 0, 0, byte(len(p) >> 8), byte(len(p))})
	whole.Write(p)
	if !bytes.Equal(split.Bytes(), whole.Bytes()) {
		t.Fatalf("a %d-byte frame written in two parts differs from the frame", len(p))
	}
	room := make([]byte, len(p)+5)
	f, err := ReadFrameInto(bytes.NewReader(split.Bytes()), 0, room)
	if err != nil || !bytes.Equal(f.Payload, p) {
		t.Fatalf("read into room: %d bytes, %v", len(f.Payload), err)
	}
	if &f.Payload[0] != &room[0] {
		t.Fatal("a payload that fits was not read into the room")
	}
	f, err = ReadFrameInto(bytes.NewReader(split.Bytes()), 0, room[:len(p)-1])
	if err != nil || !bytes.Equal(f.Payload, p) {
		t.Fatalf("read past a short room: %d bytes, %v", len(f.Payload), err)
	}
	if &f.Payload[0] == &room[0] {
		t.Fatal("a payload larger than the room was written into it")
	}
}

func TestOversizedFrameRefused(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, FrameData, make([]byte, 101), 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("writing 101 bytes with limit 100: %v, want ErrTooLarge", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("a refused frame wrote %d bytes", buf.Len())
	}
	// A header announcing 1 GiB must be refused before any allocation.
	hdr := []byte{Magic, Version, FrameData, 0, 0x40, 0, 0, 0}
	if _, err := ReadFrame(bytes.NewReader(hdr), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("reading a 1 GiB header: %v, want ErrTooLarge", err)
	}
}

func TestBadHeaders(t *testing.T) {
	for name, h := range map[string][]byte{
		"magic":   {0x00, Version, FrameData, 0, 0, 0, 0, 0},
		"version": {Magic, 9, FrameData, 0, 0, 0, 0, 0},
		"type":    {Magic, Version, 77, 0, 0, 0, 0, 0},
		"zero":    {Magic, Version, 0, 0, 0, 0, 0, 0},
		"flags":   {Magic, Version, FrameData, 1, 0, 0, 0, 0},
	} {
		if _, err := ReadFrame(bytes.NewReader(h), 0); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: %v, want ErrBadHeader", name, err)
		}
	}
	short := []byte{Magic, Version, FrameData, 0, 0, 0, 0, 5, 'a'}
	if _, err := ReadFrame(bytes.NewReader(short), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated payload: %v, want ErrUnexpectedEOF", err)
	}
}

func TestCallHeader(t *testing.T) {
	b, err := Marshal(CallHeader{Method: "cluster.hello", Args: []byte{0xa0}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeCallHeader(b)
	if err != nil || h.Method != "cluster.hello" {
		t.Fatalf("decode: %+v, %v", h, err)
	}
	for _, bad := range []CallHeader{{Method: ""}, {Method: "../etc"}, {Method: string(make([]byte, 65))}} {
		b, _ := Marshal(bad)
		if _, err := DecodeCallHeader(b); !errors.Is(err, ErrBadPayload) {
			t.Errorf("method %q: %v, want ErrBadPayload", bad.Method, err)
		}
	}
	// An unknown key is skipped (a newer peer's optional field).
	if h, err := DecodeCallHeader([]byte{0xa2, 0x01, 0x61, 'a', 0x09, 0x00}); err != nil || h.Method != "a" {
		t.Errorf("unknown key: %+v, %v; want method a", h, err)
	}
	// Duplicate keys, trailing bytes and garbage are refused.
	for name, p := range map[string][]byte{
		"duplicate": {0xa2, 0x01, 0x61, 'a', 0x01, 0x61, 'b'},
		"trailing":  append(append([]byte{}, b...), 0x00),
		"garbage":   {0xff, 0xfe},
	} {
		if _, err := DecodeCallHeader(p); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: %v, want ErrBadPayload", name, err)
		}
	}
}
