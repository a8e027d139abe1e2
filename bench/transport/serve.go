package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"sprite/pki"
	"sprite/rpc"
	"sprite/transport"
	"sprite/wire"
)

const stateDir = "/var/lib/sprite"

type payload struct {
	B []byte `cbor:"1,keyasint"`
}

// serve runs both servers on h2 with h2's own certificate until killed.
func serve() error {
	id, err := pki.LoadIdentity(stateDir)
	if err != nil {
		return err
	}
	mux := rpc.NewMux()
	mux.Handle("bench.echo", rpc.Unary(func(_ context.Context, _ rpc.Peer, p payload) (payload, error) { return p, nil }))
	mux.Handle("bench.sink", func(_ context.Context, c *rpc.Call) error {
		n := 0
		for {
			f, err := c.Recv()
			if err == io.EOF {
				return c.SetResult(n)
			}
			if err != nil {
				return err
			}
			n += len(f.Payload)
		}
	})
	node, err := transport.Listen(transport.Config{Identity: id, Listen: fmt.Sprintf(":%d", quicPort), Mux: mux,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer node.Close()
	ln, err := tls.Listen("tcp", fmt.Sprintf(":%d", tlsPort), &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{id.Cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: id.Pool,
	})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveTLS(c)
	}
}

// serveTLS: first byte 'e' echoes frames back, 's' sinks frames until
// FrameEnd and answers with the byte count.
func serveTLS(c net.Conn) {
	defer c.Close()
	mode := make([]byte, 1)
	if _, err := io.ReadFull(c, mode); err != nil {
		return
	}
	n := 0
	for {
		f, err := wire.ReadFrame(c, wire.DefaultMaxFrame)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, "tls server:", err)
			}
			return
		}
		switch {
		case mode[0] == 'e':
			if err := wire.WriteFrame(c, f.Type, f.Payload, 0); err != nil {
				return
			}
		case f.Type == wire.FrameEnd:
			b, _ := wire.Marshal(n)
			wire.WriteFrame(c, wire.FrameReply, b, 0)
			return
		default:
			n += len(f.Payload)
		}
	}
}
