//go:build linux

package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// QMP is a client of QEMU's machine protocol on a unix socket. Commands
// run one at a time; events that arrive meanwhile are kept (Events).
type QMP struct {
	conn net.Conn
	rd   *bufio.Reader
	mu   sync.Mutex

	evMu   sync.Mutex
	events []Event
}

// Event is an asynchronous QMP event (MIGRATION, STOP, RESUME...).
type Event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data"`
}

// QMPError is an error QEMU returned for a command.
type QMPError struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *QMPError) Error() string { return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc) }

// Dial connects to a QMP socket, retrying until QEMU has created it or
// ctx ends, and negotiates capabilities.
func Dial(ctx context.Context, path string) (*QMP, error) {
	var conn net.Conn
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			conn = c
			break
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return nil, fmt.Errorf("qmp dial %s: %w", path, err)
		}
	}
	q := &QMP{conn: conn, rd: bufio.NewReaderSize(conn, 64<<10)}
	// The greeting.
	if _, err := q.readMsg(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp %s greeting: %w", path, err)
	}
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

type qmpMsg struct {
	Return json.RawMessage `json:"return"`
	Error  *QMPError       `json:"error"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	QMP    json.RawMessage `json:"QMP"`
}

func (q *QMP) readMsg(ctx context.Context) (qmpMsg, error) {
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetReadDeadline(dl)
	} else {
		q.conn.SetReadDeadline(time.Time{})
	}
	line, err := q.rd.ReadBytes('\n')
	if err != nil {
		return qmpMsg{}, err
	}
	var m qmpMsg
	if err := json.Unmarshal(line, &m); err != nil {
		return qmpMsg{}, fmt.Errorf("bad qmp message %q: %w", line, err)
	}
	return m, nil
}

// Execute runs one command with arguments (nil for none; anything that
// marshals to a JSON object) and returns its "return" value.
func (q *QMP) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetWriteDeadline(dl)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		m, err := q.readMsg(ctx)
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		switch {
		case m.Event != "":
			q.evMu.Lock()
			q.events = append(q.events, Event{Name: m.Event, Data: m.Data})
			q.evMu.Unlock()
		case m.Error != nil:
			m.Error.Command = command
			return nil, m.Error
		default:
			return m.Return, nil
		}
	}
}

// Events returns and forgets the events received so far (events are read
// only while a command waits for its answer).
func (q *QMP) Events() []Event {
	q.evMu.Lock()
	defer q.evMu.Unlock()
	ev := q.events
	q.events = nil
	return ev
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }
