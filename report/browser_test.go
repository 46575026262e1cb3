package report

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probe is put first in a copy of report.html: it records every error
// event (scripts, resources) and console.error call, and on load writes
// what it saw, with each figure's rendered size and visibility, into the
// DOM for --dump-dom to print.
const probe = `<script>
window.__mwErrs = [];
window.addEventListener('error', function (e) { window.__mwErrs.push(String(e.message || (e.target && (e.target.src || e.target.href)) || e.type)); }, true);
window.addEventListener('unhandledrejection', function (e) { window.__mwErrs.push('unhandled rejection: ' + String(e.reason)); });
(function () { var ce = console.error; console.error = function () { window.__mwErrs.push(Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var r = {errors: window.__mwErrs, figures: []};
  document.querySelectorAll('figure').forEach(function (f) {
    var s = f.querySelector('svg'), b = s ? s.getBoundingClientRect() : {width: 0, height: 0, top: -1};
    var cs = s ? getComputedStyle(s) : null;
    r.figures.push({id: f.id, width: b.width, height: b.height, top: b.top + window.scrollY,
      shown: !!cs && cs.display !== 'none' && cs.visibility !== 'hidden' && cs.opacity !== '0',
      shapes: s ? s.querySelectorAll('path,rect,line,polyline,polygon,text,image,use').length : 0});
  });
  var p = document.createElement('pre'); p.id = 'mw-probe'; p.textContent = JSON.stringify(r); document.body.appendChild(p);
});
</script>`

// chromiumFlags run Debian's chromium headless, without the network
// services or a profile of its own.
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
	"--virtual-time-budget=10000", "--dump-dom"}

// TestReportInBrowser loads report.html in headless chromium: it must
// load with no error or console error, and every figure must be drawn
// visible with a real size.
func TestReportInBrowser(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
	}
	dir := t.TempDir()
	w, err := Write(fixtureSet(t), Options{OutDir: dir, Traces: []string{fixtureTracePath(t)}})
	require.NoError(t, err)
	require.NotEmpty(t, w.Figures)
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	// The probe goes in a copy, so the report itself is what a reader gets.
	page := strings.Replace(string(html), "<head>", "<head>\n"+probe, 1)
	require.NotEqual(t, string(html), page)
	probed := filepath.Join(dir, "probed.html")
	require.NoError(t, os.WriteFile(probed, []byte(page), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(append([]string{}, chromiumFlags...), "--user-data-dir="+t.TempDir(), "file://"+probed)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "chromium: %s", stderr.String())
	m := regexp.MustCompile(`(?s)<pre id="mw-probe">(.*?)</pre>`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "the page did not finish loading (no probe result); chromium said: %s", stderr.String())
	var res struct {
		Errors  []string `json:"errors"`
		Figures []struct {
			ID     string  `json:"id"`
			Width  float64 `json:"width"`
			Height float64 `json:"height"`
			Top    float64 `json:"top"`
			Shown  bool    `json:"shown"`
			Shapes int     `json:"shapes"`
		} `json:"figures"`
	}
	require.NoError(t, json.Unmarshal([]byte(unescapeHTML(m[1])), &res))
	assert.Empty(t, res.Errors, "errors while loading report.html")
	for _, line := range strings.Split(stderr.String(), "\n") {
		assert.NotContains(t, line, ":CONSOLE(", "console message from the page")
	}
	require.Len(t, res.Figures, len(w.Figures), "every figure is in the page")
	for i, f := range res.Figures {
		assert.Equal(t, w.Figures[i].Name, f.ID)
		assert.True(t, f.Shown, "%s is hidden", f.ID)
		assert.Greater(t, f.Width, 100.0, "%s is drawn too narrow", f.ID)
		assert.Greater(t, f.Height, 50.0, "%s is drawn too flat", f.ID)
		assert.GreaterOrEqual(t, f.Top, 0.0, "%s is above the page", f.ID)
		assert.Greater(t, f.Shapes, 10, "%s draws nothing", f.ID)
	}
}

// unescapeHTML undoes --dump-dom's escaping of text content.
func unescapeHTML(s string) string {
	return strings.NewReplacer("&quot;", `"`, "&lt;", "<", "&gt;", ">", "&#39;", "'", "&amp;", "&").Replace(s)
}

func fixtureTracePath(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shift.parquet")
	writeFixtureTrace(t, path)
	return path
}
