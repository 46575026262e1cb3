package algorithms

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Param describes one tunable of a policy.
type Param struct {
	// Key is the name used in --param alg.key=value.
	Key string
	// Type is the Go type of the value ("int", "bool", "duration", ...).
	Type string
	// Default is the value a fresh policy has, formatted as Set reads it.
	Default string
	// Doc is a one-line description, with the source of the default.
	Doc string
}

// Tunable is implemented by every policy and bound: ParamStruct returns a
// pointer to its parameter struct, whose fields carry `param:"key"` and
// `doc:"..."` tags.
type Tunable interface {
	ParamStruct() any
}

var durationType = reflect.TypeFor[time.Duration]()

// Params lists the parameters of t with their current values.
func Params(t Tunable) []Param {
	v := reflect.ValueOf(t.ParamStruct()).Elem()
	var out []Param
	for i := range v.NumField() {
		f := v.Type().Field(i)
		key := f.Tag.Get("param")
		if key == "" {
			continue
		}
		out = append(out, Param{Key: key, Type: typeName(f.Type), Default: format(v.Field(i)), Doc: f.Tag.Get("doc")})
	}
	return out
}

func typeName(t reflect.Type) string {
	if t == durationType {
		return "duration"
	}
	return t.Kind().String()
}

func format(v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// Set sets parameter key of t from its text form.
func Set(t Tunable, key, value string) error {
	v := reflect.ValueOf(t.ParamStruct()).Elem()
	var keys []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		k := f.Tag.Get("param")
		if k == "" {
			continue
		}
		keys = append(keys, k)
		if k != key {
			continue
		}
		fv := v.Field(i)
		old := reflect.New(fv.Type()).Elem()
		old.Set(fv)
		bad := func(want string) error {
			return fmt.Errorf("parameter %s = %q: want %s", key, value, want)
		}
		switch {
		case f.Type == durationType:
			d, err := time.ParseDuration(value)
			if err != nil {
				return bad("a duration such as 300ms")
			}
			fv.SetInt(int64(d))
		case fv.Kind() == reflect.Bool:
			b, err := strconv.ParseBool(value)
			if err != nil {
				return bad("true or false")
			}
			fv.SetBool(b)
		case fv.Kind() == reflect.Int || fv.Kind() == reflect.Int64:
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return bad("an integer")
			}
			fv.SetInt(n)
		case fv.Kind() == reflect.Float64:
			x, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return bad("a number")
			}
			fv.SetFloat(x)
		case fv.Kind() == reflect.String:
			fv.SetString(value)
		default:
			return fmt.Errorf("parameter %s has unsupported type %s", key, f.Type)
		}
		if c, ok := t.(interface{ Check() error }); ok {
			if err := c.Check(); err != nil {
				fv.Set(old) // a refused value must not stick
				return fmt.Errorf("parameter %s = %q: %w", key, value, err)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown parameter %q (known: %s)", key, strings.Join(keys, ", "))
}

// ParamsJSON is t's parameters as a JSON object with keys in declaration
// order, for result files: numbers and booleans as JSON values, durations
// as strings ("300ms"). Encoding is deterministic.
func ParamsJSON(t Tunable) string {
	v := reflect.ValueOf(t.ParamStruct()).Elem()
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for i := range v.NumField() {
		key := v.Type().Field(i).Tag.Get("param")
		if key == "" {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(key)
		var val []byte
		if fv := v.Field(i); fv.Type() == durationType {
			val, _ = json.Marshal(format(fv))
		} else {
			val, _ = json.Marshal(fv.Interface())
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.String()
}

// Upper bounds of parameters: far beyond any real setting, low enough that
// no product or sum of them with memory sizes (at most 2^31 pages) or
// times (at most an hour of nanoseconds) overflows int64.
const (
	MaxRoundsParam   = 1 << 20
	MaxPagesParam    = 1 << 31
	MaxBatchParam    = 1 << 20
	MaxDurationParam = time.Hour
	MaxRateParam     = 1 << 50 // bytes/s
)

// inRange reports v outside [lo, hi].
func inRange(key string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s = %d: want %d to %d", key, v, lo, hi)
	}
	return nil
}

// durationIn reports d outside [lo, hi].
func durationIn(key string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return fmt.Errorf("%s = %v: want %v to %v", key, d, lo, hi)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
