// Package wire is sprite's wire format: length-prefixed frames whose payloads
// are CBOR (RFC 8949) maps with small integer keys. The Go structs in this
// package and in the packages that define calls are the schema; the format is
// written down in docs/protocol.md.
//
// A frame is an 8-byte header followed by the payload:
//
//	offset 0  magic   0x53 ('S')
//	offset 1  version 1
//	offset 2  type    one of the Frame* constants
//	offset 3  flags   reserved, must be 0
//	offset 4  length  payload length, uint32 big endian, <= the reader's limit
//
// Decoding never trusts the peer: a bad magic, version, type or flag, a
// length over the limit, or a payload that is not the CBOR the receiver
// expects is an error, and the transport answers such an error by closing the
// connection with a logged reason. The decoder is fuzzed (wire_fuzz_test.go).
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame header constants.
const (
	Magic      = 0x53
	Version    = 1
	HeaderSize = 8

	// DefaultMaxFrame bounds a frame's payload unless a reader says otherwise:
	// big enough for a 1 MiB file-system write and its header.
	DefaultMaxFrame = 4 << 20
)

// Frame types.
const (
	FrameCall  byte = 1 // first frame of a stream: a CallHeader
	FrameReply byte = 2 // last frame from the server: a Reply
	FrameMsg   byte = 3 // a CBOR message inside a streaming call
	FrameData  byte = 4 // raw bytes inside a streaming call (stdio, file data)
	FrameEnd   byte = 5 // the sender will send nothing more (half close), empty
	frameMax   byte = 5
)

// Errors the decoder returns; test with errors.Is.
var (
	ErrBadHeader = errors.New("malformed frame header")
	ErrTooLarge  = errors.New("frame larger than the limit")
)

// Frame is one decoded frame.
type Frame struct {
	Type    byte
	Payload []byte
}

// WriteFrame writes one frame. It refuses payloads over DefaultMaxFrame-sized
// limits of the caller's choosing by returning ErrTooLarge before writing.
func WriteFrame(w io.Writer, typ byte, payload []byte, limit int) error {
	if len(payload) >= bulkFrame {
		if err := checkFrame(typ, len(payload), limit); err != nil {
			return err
		}
		var h [HeaderSize]byte
		putHeader(h[:], typ, len(payload))
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		_, err := w.Write(payload)
		return err
	}
	buf, err := AppendFrame(make([]byte, 0, HeaderSize+len(payload)), typ, payload, limit)
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}

// AppendFrame appends one frame to dst, for a sender that writes several
// small frames at once (so that they leave in one packet). It refuses what
// WriteFrame refuses.
func AppendFrame(dst []byte, typ byte, payload []byte, limit int) ([]byte, error) {
	if err := checkFrame(typ, len(payload), limit); err != nil {
		return dst, err
	}
	var h [HeaderSize]byte
	putHeader(h[:], typ, len(payload))
	return append(append(dst, h[:]...), payload...), nil
}

func checkFrame(typ byte, n, limit int) error {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	if n > limit {
		return fmt.Errorf("write frame: %d bytes: %w (limit %d)", n, ErrTooLarge, limit)
	}
	if typ == 0 || typ > frameMax {
		return fmt.Errorf("write frame: unknown type %d: %w", typ, ErrBadHeader)
	}
	return nil
}

// bulkFrame is the payload size from which WriteFrame writes the header
// and the payload apart, rather than copying both into one buffer first:
// a read's 256 KiB of data cost a fresh buffer and a copy per frame (most
// of what a cold read allocated on the server). A small frame stays one
// write, so that it goes out in one packet.
const bulkFrame = 16 << 10

func putHeader(h []byte, typ byte, n int) {
	h[0], h[1], h[2], h[3] = Magic, Version, typ, 0
	binary.BigEndian.PutUint32(h[4:8], uint32(n))
}

// ParseHeader checks an 8-byte header and returns the type and payload length.
func ParseHeader(h []byte, limit int) (typ byte, n int, err error) {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	if len(h) < HeaderSize {
		return 0, 0, fmt.Errorf("%w: %d bytes", ErrBadHeader, len(h))
	}
	if h[0] != Magic {
		return 0, 0, fmt.Errorf("%w: magic 0x%02x, want 0x%02x", ErrBadHeader, h[0], Magic)
	}
	if h[1] != Version {
		return 0, 0, fmt.Errorf("%w: version %d, this build speaks %d", ErrBadHeader, h[1], Version)
	}
	if h[2] == 0 || h[2] > frameMax {
		return 0, 0, fmt.Errorf("%w: unknown type %d", ErrBadHeader, h[2])
	}
	if h[3] != 0 {
		return 0, 0, fmt.Errorf("%w: flags 0x%02x", ErrBadHeader, h[3])
	}
	size := binary.BigEndian.Uint32(h[4:8])
	if uint64(size) > uint64(limit) {
		return 0, 0, fmt.Errorf("read frame: %d bytes: %w (limit %d)", size, ErrTooLarge, limit)
	}
	return h[2], int(size), nil
}

// ReadFrame reads one frame whose payload is at most limit bytes.
func ReadFrame(r io.Reader, limit int) (Frame, error) { return ReadFrameInto(r, limit, nil) }

// ReadFrameInto is ReadFrame reading the payload into room when it fits
// (Payload is then room[:n]), into a new buffer otherwise. A reader of
// bulk data passes the memory the data is going to: a fresh buffer per
// frame costs its allocation, its zeroing and, on a virtual machine, the
// host's faults on pages the guest's garbage collector gave back.
func ReadFrameInto(r io.Reader, limit int, room []byte) (Frame, error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	typ, n, err := ParseHeader(h[:], limit)
	if err != nil {
		return Frame{}, err
	}
	var p []byte
	if n <= len(room) {
		p = room[:n]
	} else {
		p = make([]byte, n)
	}
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("read frame payload: %w", err)
	}
	return Frame{Type: typ, Payload: p}, nil
}
