package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeQEMU serves one QMP client on a socket in a temp dir: it greets,
// answers each command through answer, and sends the events queued on
// events. It returns the socket path.
func fakeQEMU(t *testing.T, greet string, answer func(cmd string, args json.RawMessage) string, events <-chan string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		out := make(chan string, 16)
		go func() {
			for l := range out {
				conn.Write([]byte(l + "\n"))
			}
		}()
		if greet != "" {
			out <- greet
		}
		go func() {
			for e := range events {
				out <- e
			}
		}()
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			var req struct {
				Execute   string          `json:"execute"`
				Arguments json.RawMessage `json:"arguments"`
				ID        json.RawMessage `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &req) != nil {
				return
			}
			a := answer(req.Execute, req.Arguments)
			if a == "" {
				return // hang up
			}
			out <- `{` + a + `, "id": ` + string(req.ID) + `}`
		}
	}()
	return sock
}

const greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`

func TestClient(t *testing.T) {
	events := make(chan string, 4)
	sock := fakeQEMU(t, greeting, func(cmd string, args json.RawMessage) string {
		switch cmd {
		case "qmp_capabilities":
			return `"return": {}`
		case "human-monitor-command":
			var a struct {
				Line string `json:"command-line"`
			}
			json.Unmarshal(args, &a)
			return `"return": "you said ` + a.Line + `"`
		case "query-migrate":
			events <- `{"event": "MIGRATION", "data": {"status": "completed"}, "timestamp": {"seconds": 100, "microseconds": 250}}`
			return `"return": {"status": "active", "ram": {"total": 4096}}`
		default:
			return `"error": {"class": "CommandNotFound", "desc": "The command ` + cmd + ` has not been found"}`
		}
	}, events)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, Version{7, 2, 22}, c.Version())
	pid, err := c.PeerPID()
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), pid)

	out, err := c.HMP(ctx, "info ramblock")
	require.NoError(t, err)
	assert.Equal(t, "you said info ramblock", out)

	var st struct {
		Status string `json:"status"`
		RAM    struct {
			Total int64 `json:"total"`
		} `json:"ram"`
	}
	require.NoError(t, c.Execute(ctx, "query-migrate", nil, &st))
	assert.Equal(t, "active", st.Status)
	assert.Equal(t, int64(4096), st.RAM.Total)

	ev, i, err := c.WaitEvent(ctx, 0, func(e Event) bool { return e.Name == "MIGRATION" })
	require.NoError(t, err)
	assert.Equal(t, 0, i)
	assert.Equal(t, time.Unix(100, 250000), ev.Time)
	assert.JSONEq(t, `{"status": "completed"}`, string(ev.Data))

	err = c.Execute(ctx, "no-such", nil, nil)
	var qe *Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, "CommandNotFound", qe.Class)
	assert.Equal(t, "no-such", qe.Command)
}

func TestClientFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("no socket", func(t *testing.T) {
		_, err := Dial(ctx, filepath.Join(t.TempDir(), "none"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "connect to QMP socket")
	})
	t.Run("not QMP", func(t *testing.T) {
		sock := fakeQEMU(t, "this is not json", func(string, json.RawMessage) string { return "" }, nil)
		_, err := Dial(ctx, sock)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "bad QMP message")
	})
	t.Run("silent", func(t *testing.T) {
		old := GreetingTimeout
		GreetingTimeout = 200 * time.Millisecond
		defer func() { GreetingTimeout = old }()
		sock := fakeQEMU(t, "", func(string, json.RawMessage) string { return "" }, nil)
		_, err := Dial(ctx, sock)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "another may hold this one")
	})
	t.Run("hang up mid-command", func(t *testing.T) {
		sock := fakeQEMU(t, greeting, func(cmd string, _ json.RawMessage) string {
			if cmd == "qmp_capabilities" {
				return `"return": {}`
			}
			return ""
		}, nil)
		c, err := Dial(ctx, sock)
		require.NoError(t, err)
		defer c.Close()
		err = c.Execute(ctx, "query-status", nil, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "closed the QMP connection")
		_, _, err = c.WaitEvent(ctx, 0, func(Event) bool { return true })
		require.Error(t, err)
	})
}
