package wire

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the frame reader and to every payload
// decoder: none may panic, allocate past the limit, or accept a frame whose
// re-encoding differs.
func FuzzDecode(f *testing.F) {
	var seed bytes.Buffer
	b, _ := Marshal(CallHeader{Method: "cluster.hello", Args: []byte{0xa0}})
	WriteFrame(&seed, FrameCall, b, 0)
	r, _ := Marshal(Reply{Code: CodeError, Message: "no"})
	WriteFrame(&seed, FrameReply, r, 0)
	f.Add(seed.Bytes())
	f.Add([]byte{Magic, Version, FrameData, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := bytes.NewReader(data)
		for {
			fr, err := ReadFrame(rd, 1<<16)
			if err != nil {
				break
			}
			if len(fr.Payload) > 1<<16 {
				t.Fatalf("payload of %d bytes passed a 64 KiB limit", len(fr.Payload))
			}
			var out bytes.Buffer
			if err := WriteFrame(&out, fr.Type, fr.Payload, 1<<16); err != nil {
				t.Fatalf("re-encoding an accepted frame: %v", err)
			}
			if h, err := DecodeCallHeader(fr.Payload); err == nil && h.Method == "" {
				t.Fatal("accepted a call with no method")
			}
			var rep Reply
			_ = Unmarshal(fr.Payload, &rep)
		}
		_, _ = DecodeCallHeader(data)
		var rep Reply
		_ = Unmarshal(data, &rep)
	})
}
