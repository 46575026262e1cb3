package tracecsv

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/microwiper/microwiper/tracefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readAll(s string) ([]Row, *Reader) {
	r := NewReader(strings.NewReader(s))
	var rows []Row
	for r.Scan() {
		rows = append(rows, r.Row())
	}
	return rows, r
}

func TestReadGood(t *testing.T) {
	rows, r := readAll("# pages=16\r\n# epoch_ns = 100\n#free comment\n\n t_ns, page ,writes\r\n0,1,0\n100,2,3\n# later\n\n 200 , 15 , 1 \n")
	require.NoError(t, r.Err())
	assert.Equal(t, []Row{{0, 1, 0, false}, {100, 2, 3, false}, {200, 15, 1, false}}, rows)
	v, ok := r.Meta("pages")
	assert.True(t, ok)
	assert.Equal(t, "16", v)
	v, _ = r.Meta("epoch_ns")
	assert.Equal(t, "100", v)
	assert.True(t, r.HasWrites())

	rows, r = readAll("t_ns,page\n5,6\n")
	require.NoError(t, r.Err())
	assert.Equal(t, []Row{{5, 6, 1, false}}, rows)
	assert.False(t, r.HasWrites())

	rows, r = readAll("t_ns,page,writes,zero\n0,1,0,0\n100,2,3,1\n200,2,1, 0 \n")
	require.NoError(t, r.Err())
	assert.Equal(t, []Row{{0, 1, 0, false}, {100, 2, 3, true}, {200, 2, 1, false}}, rows)
	assert.True(t, r.HasZero())
}

func TestReadErrors(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"empty", "", 1, "no header line"},
		{"comments only", "# pages=3\n", 2, "no header line"},
		{"no header", "1,2,3\n", 1, "header"},
		{"wrong header", "time,page\n", 1, "header"},
		{"too few", "t_ns,page,writes\n1,2\n", 2, "want 3 comma-separated"},
		{"too many", "t_ns,page\n1,2,3\n", 2, "want 2 comma-separated"},
		{"negative t", "t_ns,page\n-1,2\n", 2, "t_ns \"-1\" is negative"},
		{"negative page", "t_ns,page\n1,-2\n", 2, "page \"-2\" is negative"},
		{"negative writes", "t_ns,page,writes\n1,2,-3\n", 2, "writes \"-3\" is negative"},
		{"empty field", "t_ns,page\n1,\n", 2, "page is empty"},
		{"not a number", "t_ns,page\n1x,2\n", 2, "not a non-negative integer"},
		{"float", "t_ns,page\n1.5,2\n", 2, "not a non-negative integer"},
		{"overflow t", "t_ns,page\n99999999999999999999,2\n", 2, "too large"},
		{"overflow writes", "t_ns,page,writes\n1,2,2147483648\n", 2, "too large"},
		{"zero not 0 or 1", "t_ns,page,writes,zero\n1,2,1,2\n", 2, `zero "2": want 0 or 1`},
		{"zero missing", "t_ns,page,writes,zero\n1,2,1\n", 2, "want 4 comma-separated"},
		{"long line", "t_ns,page\n" + strings.Repeat("1", maxLine+5) + "\n", 2, "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, r := readAll(tc.in)
			var se *SyntaxError
			require.True(t, errors.As(r.Err(), &se), "got %v", r.Err())
			assert.Equal(t, tc.line, se.Line)
			assert.Contains(t, se.Msg, tc.msg)
		})
	}
}

func TestWriteThenRead(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	h := tracefmt.Header{PageSize: 4096, Pages: 10, EpochNS: 100, Backend: "synthetic", Workload: "a\nb"}
	require.NoError(t, w.Header(h))
	require.NoError(t, w.Row(0, 3, 0, false))
	require.NoError(t, w.Row(100, 9, 7, false))
	require.Error(t, w.Header(h))
	require.NoError(t, w.Flush())
	assert.Equal(t, "# microwiper.format=trace/v1\n# page_size=4096\n# pages=10\n# epoch_ns=100\n# backend=synthetic\n# workload=a b\n# kernel=\n# started_at=\n# regions=[]\n"+
		"t_ns,page,writes\n0,3,0\n100,9,7\n", buf.String())
	rows, r := readAll(buf.String())
	require.NoError(t, r.Err())
	assert.Equal(t, []Row{{0, 3, 0, false}, {100, 9, 7, false}}, rows)

	buf.Reset()
	w = NewWriter(&buf)
	require.NoError(t, w.Flush())
	assert.Equal(t, HeaderThree+"\n", buf.String())

	buf.Reset()
	w = NewWriter(&buf)
	w.Zero = true
	require.NoError(t, w.Row(0, 3, 0, false))
	require.NoError(t, w.Row(100, 9, 7, true))
	require.NoError(t, w.Flush())
	assert.Equal(t, HeaderFour+"\n0,3,0,0\n100,9,7,1\n", buf.String())
}

// FuzzReader feeds arbitrary bytes: the reader must never panic, every row
// it returns must be in range, and an error must name a line.
func FuzzReader(f *testing.F) {
	f.Add([]byte("# pages=4\nt_ns,page,writes\n0,1,0\n100,2,3\n"))
	f.Add([]byte("t_ns,page\n1,2\n\r\n3,4"))
	f.Add([]byte("t_ns,page\n1,,2\n"))
	f.Add([]byte("\x00\xff,,\n"))
	f.Add([]byte("t_ns,page,writes,zero\n0,1,0,0\n100,2,3,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for r.Scan() {
			row := r.Row()
			if row.TNS < 0 || row.Page < 0 || row.Writes < 0 {
				t.Fatalf("negative value accepted: %+v", row)
			}
			if !r.HasZero() && row.Zero {
				t.Fatalf("zero without a zero column: %+v", row)
			}
			if !r.HasWrites() && row.Writes != 1 {
				t.Fatalf("writes %d without a writes column", row.Writes)
			}
		}
		var se *SyntaxError
		if err := r.Err(); err != nil && (!errors.As(err, &se) || se.Line < 1) {
			t.Fatalf("error without a line: %v", err)
		}
	})
}
