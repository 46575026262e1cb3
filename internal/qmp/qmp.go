// Package qmp is a small client for the QEMU Machine Protocol: JSON lines
// over a Unix socket, one command at a time, with the asynchronous events
// (MIGRATION, MIGRATION_PASS, STOP, ...) kept with QEMU's own timestamps.
//
// Only what microwiper needs is here: the capabilities handshake, Execute
// with typed results, HMP pass-through and an event log. It uses the
// standard library only.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Event is one asynchronous QMP event.
type Event struct {
	// Name is the event's name, e.g. "MIGRATION".
	Name string
	// Data is the event's payload, undecoded.
	Data json.RawMessage
	// Time is QEMU's timestamp of the event (host wall clock).
	Time time.Time
}

// Error is an error answer from QEMU.
type Error struct {
	Command string
	Class   string
	Desc    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Version is QEMU's version from the greeting.
type Version struct{ Major, Minor, Micro int }

// Client is a connection to one QMP socket. Its methods may be called from
// several goroutines; commands are serialised.
type Client struct {
	conn    net.Conn
	version Version

	cmdMu  sync.Mutex // one command in flight
	wmu    sync.Mutex
	nextID int

	mu      sync.Mutex
	pending map[string]chan reply
	events  []Event
	evCond  chan struct{} // closed and replaced at each event
	readErr error
	done    chan struct{}
}

type reply struct {
	ret json.RawMessage
	err *Error
}

type message struct {
	QMP *struct {
		Version struct {
			QEMU Version `json:"qemu"`
		} `json:"version"`
	} `json:"QMP"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	ID json.RawMessage `json:"id"`
}

// GreetingTimeout bounds the wait for QEMU's greeting.
var GreetingTimeout = 5 * time.Second

// Dial connects to the QMP socket at path, reads the greeting and leaves
// capabilities negotiation mode. The context bounds the handshake only.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	var conn net.Conn
	var err error
	for {
		conn, err = d.DialContext(ctx, "unix", path)
		// QEMU's listen backlog is short and it accepts the next client
		// only once it has noticed the last one leave: retry a moment.
		if err == nil || !errors.Is(err, syscall.EAGAIN) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to QMP socket %s: %w", path, err)
	}
	c := &Client{conn: conn, pending: map[string]chan reply{}, evCond: make(chan struct{}), done: make(chan struct{})}
	greet := make(chan error, 1)
	go c.read(greet)
	select {
	case err = <-greet:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(GreetingTimeout):
		err = fmt.Errorf("no greeting in %v: QEMU serves one client per QMP socket, and another may hold this one (give QEMU a second -qmp)", GreetingTimeout)
	}
	if err != nil {
		conn.Close()
		<-c.done
		return nil, fmt.Errorf("QMP greeting on %s: %w", path, err)
	}
	if err := c.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Version is the QEMU version the greeting announced.
func (c *Client) Version() Version { return c.version }

func (c *Client) read(greet chan<- error) {
	defer close(c.done)
	sc := bufio.NewScanner(c.conn)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	greeted := false
	fail := func(err error) {
		if !greeted {
			greet <- err
		}
		c.mu.Lock()
		c.readErr = err
		for id, ch := range c.pending {
			close(ch)
			delete(c.pending, id)
		}
		close(c.evCond)
		c.evCond = nil
		c.mu.Unlock()
	}
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			fail(fmt.Errorf("bad QMP message %.200q: %w", sc.Text(), err))
			c.conn.Close()
			return
		}
		switch {
		case m.QMP != nil:
			c.version = m.QMP.Version.QEMU
			if !greeted {
				greeted = true
				greet <- nil
			}
		case m.Event != "":
			ev := Event{Name: m.Event, Data: m.Data}
			if m.Timestamp != nil {
				ev.Time = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
			}
			c.mu.Lock()
			c.events = append(c.events, ev)
			close(c.evCond)
			c.evCond = make(chan struct{})
			c.mu.Unlock()
		default:
			id := string(m.ID)
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch == nil {
				continue
			}
			r := reply{ret: m.Return}
			if m.Error != nil {
				r.err = &Error{Class: m.Error.Class, Desc: m.Error.Desc}
			}
			ch <- r
		}
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("QEMU closed the QMP connection")
	}
	fail(err)
}

// Execute runs one command. args is marshalled as the command's
// arguments (nil for none); the answer's "return" is unmarshalled into
// result unless it is nil.
func (c *Client) Execute(ctx context.Context, cmd string, args any, result any) error {
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	c.nextID++
	id := strconv.Itoa(c.nextID)
	req := map[string]any{"execute": cmd, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: encode arguments: %w", cmd, err)
	}
	ch := make(chan reply, 1)
	key := strconv.Quote(id)
	c.mu.Lock()
	if c.readErr != nil {
		err := c.readErr
		c.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	c.pending[key] = ch
	c.mu.Unlock()
	c.wmu.Lock()
	_, err = c.conn.Write(append(b, '\n'))
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, key)
		c.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			c.mu.Lock()
			err := c.readErr
			c.mu.Unlock()
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		if r.err != nil {
			r.err.Command = cmd
			return r.err
		}
		if result != nil && len(r.ret) > 0 {
			if err := json.Unmarshal(r.ret, result); err != nil {
				return fmt.Errorf("qmp %s: decode answer: %w", cmd, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, key)
		c.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", cmd, ctx.Err())
	}
}

// HMP runs a human monitor command and returns its text.
func (c *Client) HMP(ctx context.Context, line string) (string, error) {
	var out string
	err := c.Execute(ctx, "human-monitor-command", map[string]string{"command-line": line}, &out)
	return out, err
}

// Events returns the events received so far, oldest first.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// WaitEvent waits until an event for which match returns true has been
// received (at or after index from in the event log) and returns it with
// its index.
func (c *Client) WaitEvent(ctx context.Context, from int, match func(Event) bool) (Event, int, error) {
	for {
		c.mu.Lock()
		for i := from; i < len(c.events); i++ {
			if match(c.events[i]) {
				ev := c.events[i]
				c.mu.Unlock()
				return ev, i, nil
			}
		}
		from = len(c.events)
		wake, rerr := c.evCond, c.readErr
		c.mu.Unlock()
		if wake == nil {
			return Event{}, 0, fmt.Errorf("wait for QMP event: %w", rerr)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, 0, fmt.Errorf("wait for QMP event: %w", ctx.Err())
		}
	}
}

// Close closes the connection.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// PeerPID is the pid of the process at the other end of the socket
// (SO_PEERCRED): the QEMU itself.
func (c *Client) PeerPID() (int, error) { return peerPID(c.conn) }
