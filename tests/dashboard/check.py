#!/usr/bin/env python3
"""Drives headless Chromium through the ctix web dashboard of a live node and checks what it shows.

scripts/check-dashboard.sh starts the federation and runs this; it is not meant to be run alone.
Standard library only: Chromium is driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages ending in a NUL byte, commands on fd 3, answers and
events on fd 4), so no port is opened and nothing is installed from PyPI.

Checks, in order, each printed as PASS or FAIL (the first FAIL ends the run, exit code 1):
  1. without a session the page shows only the sign-in form, and the API refuses the browser (401);
  2. a wrong token is refused with a message; the node's token signs in through the form;
  3. the session cookie is HttpOnly (scripts cannot read it) and cannot write (POST refused);
  4. the federation graph shows every member, the live peer connected and the stopped one down,
     with its lag and last-seen labels, and the peers table agrees;
  5. the recent indicators show every submitted value; the type and text filters narrow them;
  6. the fork panel shows the forked origin with its evidence (or no fork); the drill list holds the drill and its report
     frame holds the timeline chart with a lane per participant and a marker per inject;
  7. an indicator submitted while the page is open appears without reloading it (auto-refresh);
  8. signing out returns to the form and the API refuses the browser again.
Throughout: any JavaScript exception, console error, CSP violation or failed request (other than
the 401s that the checks provoke on purpose) is a failure. Screenshots go to --out.
"""

import argparse
import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.request


class Fail(Exception):
    pass


def passed(msg):
    print(f"PASS {msg}", flush=True)


class Browser:
    """One headless Chromium with one page, over the DevTools pipe."""

    def __init__(self, binary, width, height):
        self.profile = tempfile.TemporaryDirectory(prefix="ctix-dash-chrome-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3, inheritable=True)
            os.dup2(b, 4, inheritable=True)

        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
            f"--user-data-dir={self.profile.name}", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--remote-debugging-pipe", f"--window-size={width},{height}", "about:blank",
        ]
        self.log = open(os.path.join(self.profile.name, "chromium.log"), "wb")
        self.proc = subprocess.Popen([binary, *flags], preexec_fn=fds, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def close(self):
        try:
            self.call("Browser.close", browser=True, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.profile.cleanup()

    def _read(self, timeout):
        """Reads one message (an answer or an event), or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise Fail("Chromium closed the DevTools pipe (it crashed or exited)")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, browser=False, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if not browser and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(max(0.0, deadline - time.monotonic()))
            if m is None:
                raise Fail(f"Chromium did not answer {method} within {timeout} s")
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise Fail(f"{method}: {m['error'].get('message')}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def pump(self, seconds):
        """Collects events for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            m = self._read(left)
            if m is not None and "method" in m:
                self.events.append(m)

    def eval(self, expr, timeout=30):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                      timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise Fail(f"evaluating {expr[:80]!r}: {d.get('exception', {}).get('description') or d.get('text')}")
        return r["result"].get("value")

    def wait_for(self, expr, what, timeout=30):
        """Polls a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.eval(expr)
            if last:
                return last
            self.pump(0.25)
        raise Fail(f"{what} (after {timeout} s; last value {last!r})")

    def goto(self, url):
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(e["method"] == "Page.loadEventFired" for e in self.events):
                self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
                return
            self.pump(0.1)
        raise Fail(f"{url} did not finish loading within 30 s")

    def type_into(self, selector, text):
        self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = ''; e.focus(); }})()")
        self.call("Input.insertText", {"text": text})

    def press_enter(self):
        for kind in ("keyDown", "keyUp"):
            p = {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
            if kind == "keyDown":
                p["text"] = "\r"
            self.call("Input.dispatchKeyEvent", p)

    def click(self, selector):
        rect = self.eval(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": rect[0], "y": rect[1], "button": "left", "clickCount": 1})

    def screenshot(self, path, selector=None):
        params = {"format": "png", "captureBeyondViewport": True}
        if selector:
            r = self.eval(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
                const r = e.getBoundingClientRect();
                return [r.x + window.scrollX, r.y + window.scrollY, r.width, r.height]; }})()""")
            params["clip"] = {"x": r[0], "y": r[1], "width": r[2], "height": r[3], "scale": 1}
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise Fail(f"{path}: the screenshot is not a PNG")
        with open(path, "wb") as f:
            f.write(data)
        return len(data)


class Problems:
    """Page errors seen in the browser's events, less the ones a check provokes on purpose."""

    def __init__(self, browser):
        self.b = browser
        self.allowed = []  # (url fragment, status) pairs a check expects to fail
        self.urls = {}  # requestId -> url

    def allow(self, url_part, status):
        self.allowed.append((url_part, status))

    def check(self):
        found = []
        events, self.b.events = self.b.events, []
        for e in events:
            m, p = e["method"], e.get("params", {})
            if m == "Network.requestWillBeSent":
                self.urls[p["requestId"]] = p["request"]["url"]
            elif m == "Network.responseReceived":
                url, status = p["response"]["url"], p["response"]["status"]
                if status >= 400:
                    allowed = next((a for a in self.allowed if a[0] in url and a[1] == status), None)
                    if allowed:
                        self.allowed.remove(allowed)
                    else:
                        found.append(f"HTTP {status} for {url}")
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                found.append(f"request failed: {self.urls.get(p['requestId'], '?')}: {p.get('errorText')}")
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                found.append(f"JavaScript exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                found.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                entry = p["entry"]
                # A refused request also logs "Failed to load resource"; it was judged above.
                if entry.get("source") == "network" and "status of" in entry.get("text", ""):
                    continue
                found.append(f"browser log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        if found:
            raise Fail("the page had errors:\n  " + "\n  ".join(found))


def api_submit(api, token, indicator):
    req = urllib.request.Request(
        f"{api}/api/v1/indicator", data=json.dumps(indicator).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.load(r)
    if body.get("accepted") != 1:
        raise Fail(f"the node did not accept {indicator}: {body}")


# Whether an element takes up room on the page (CSS can override the `hidden` attribute).
VISIBLE = "(() => {{ const e = document.querySelector('{}'); return !!e && e.getClientRects().length > 0; }})()"


def text_of(selector):
    return f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"


def run(args, b, problems):
    creds = json.load(open(args.creds))
    api, token = creds["api"].rstrip("/"), creds[args.token_field]
    url = f"{api}/dashboard/?refresh={args.refresh}"
    out = args.out

    # 1. No session: only the form, and the API refuses the browser.
    b.goto(url)
    b.wait_for("document.body.dataset.view === 'login'", "the sign-in form did not appear")
    if b.eval(VISIBLE.format("#app")) or not b.eval(VISIBLE.format("#login")):
        raise Fail("without a session the page shows the dashboard panels, or no sign-in form")
    problems.allow("/api/v1/status", 401)
    code = b.eval("fetch('/api/v1/status').then(r => r.status)")
    if code != 401:
        raise Fail(f"GET /api/v1/status from the browser without a session answered {code}, not 401")
    problems.check()
    b.screenshot(os.path.join(out, "login.png"))
    passed("without a session: only the sign-in form; /api/v1/status answers the browser 401")

    # 2. A wrong token, then the right one, typed into the form.
    problems.allow("/dashboard/login", 401)
    b.type_into("#token", "not-a-token-of-this-node-0000000000000000")
    b.press_enter()
    b.wait_for(f"{text_of('#login-error')}.includes('Not signed in')", "a wrong token showed no error")
    problems.check()
    b.type_into("#token", token)
    b.press_enter()
    b.wait_for("document.body.dataset.view === 'app' && Number(document.body.dataset.refreshes || 0) >= 1",
               "signing in with the node's token did not show the dashboard")
    if b.eval(VISIBLE.format("#login")) or not b.eval(VISIBLE.format("#app")):
        raise Fail("signed in, the page still shows the sign-in form, or no dashboard panels")
    node = b.eval(text_of("#node-name"))
    if node != args.node:
        raise Fail(f"the header names node {node!r}, expected {args.node!r}")
    problems.check()
    passed(f"a wrong token is refused with a message; {args.token_field} signs in to node {node}")

    # 3. The session cookie: out of reach of scripts, and unable to write.
    if "ctix_session" in b.eval("document.cookie"):
        raise Fail("the session cookie is readable by scripts (not HttpOnly)")
    problems.allow("/api/v1/indicator", 401)
    code = b.eval("""fetch('/api/v1/indicator', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({type: 'ipv4', value: '192.0.2.66'})}).then(r => r.status)""")
    if code != 401:
        raise Fail(f"a POST with only the session cookie answered {code}, not 401: the session can write")
    problems.check()
    passed("the session cookie is HttpOnly and cannot write (POST /api/v1/indicator: 401)")

    # 4. The federation graph and peers table, live.
    members = args.members.split(",")
    for m in members:
        b.wait_for(f"!!document.querySelector('#graph g.node[data-node=\"{m}\"]')", f"the graph has no node {m}")
    for peer, want in [(p, "connected") for p in args.connected.split(",") if p] + \
                      [(p, "down") for p in args.down.split(",") if p]:
        b.wait_for(f"(document.querySelector('#graph line.link[data-peer=\"{peer}\"]') || {{dataset: {{}}}})"
                   f".dataset.state === '{want}'", f"the graph does not show the link to {peer} as {want}", timeout=40)
        label = b.eval(text_of(f'#graph text.link-label[data-peer="{peer}"]'))
        row = b.eval(text_of(f'#peers tr[data-peer="{peer}"]'))
        if want not in label or want not in row:
            raise Fail(f"link to {peer}: label {label!r}, table row {row!r}: expected {want!r} in both")
        if want == "connected" and "behind" not in label:
            raise Fail(f"the link to {peer} shows no lag: {label!r}")
        if want == "down" and "seen" not in label:
            raise Fail(f"the link to {peer} shows no last-seen time: {label!r}")
    problems.check()
    b.screenshot(os.path.join(out, "federation.png"), "#federation")
    passed(f"the graph shows {', '.join(members)}; links: {args.connected} connected, {args.down} down, with lag "
           "and last seen; the peers table agrees")

    # 5. Recent indicators and their filters.
    values = args.values.split(",")
    for v in values:
        b.wait_for(f"{text_of('#indicators-table tbody')}.includes({json.dumps(v)})",
                   f"the recent indicators do not show {v}", timeout=30)
    b.eval("(() => { const s = document.getElementById('f-type'); s.value = 'domain';"
           " s.dispatchEvent(new Event('change', {bubbles: true})); })()")
    b.wait_for("""(() => { const rows = [...document.querySelectorAll('#indicators-table tbody tr[data-id]')];
        return rows.length > 0 && rows.every(r => r.children[2].textContent === 'domain'); })()""",
               "filtering by type=domain did not leave only domains")
    domains = [v for v in values if not v[0].isdigit()]
    for v in domains:
        b.wait_for(f"{text_of('#indicators-table tbody')}.includes({json.dumps(v)})",
                   f"the type filter hid the domain {v}")
    b.eval("(() => { const s = document.getElementById('f-type'); s.value = '';"
           " s.dispatchEvent(new Event('change', {bubbles: true})); })()")
    b.type_into("#f-text", args.text_filter)
    b.wait_for(f"""(() => {{ const rows = [...document.querySelectorAll('#indicators-table tbody tr[data-id]')];
        return rows.length > 0 && rows.every(r => r.textContent.toLowerCase().includes({json.dumps(args.text_filter.lower())})); }})()""",
               f"the text filter {args.text_filter!r} did not narrow the list")
    b.screenshot(os.path.join(out, "indicators-filtered.png"), "#indicators")
    b.type_into("#f-text", "")
    b.eval("document.getElementById('f-text').dispatchEvent(new Event('input', {bubbles: true}))")
    b.wait_for(f"{text_of('#indicators-table tbody')}.includes({json.dumps(values[0])})", "clearing the filter")
    problems.check()
    passed(f"the recent indicators show all {len(values)} submitted values; the type and text filters narrow them")

    # 6. Forks and drills.
    forks = b.eval(text_of("#forks"))
    if args.fork_origin:
        row = b.wait_for(text_of(f'#forks-table tr[data-origin="{args.fork_origin}"]'),
                         f"the fork panel does not show {args.fork_origin}")
        for want in [args.fork_value, "hash "]:
            if want not in row:
                raise Fail(f"the fork record of {args.fork_origin} does not show {want!r}: {row!r}")
        if not b.eval(f"!!document.querySelector('#graph g.node.quarantined[data-node=\"{args.fork_origin}\"]')"):
            raise Fail(f"the graph does not mark {args.fork_origin} as quarantined")
        b.screenshot(os.path.join(out, "forks.png"), "#forks")
        passed(f"the fork panel shows {args.fork_origin} quarantined, with the conflicting entry ({args.fork_value}); "
               "the graph marks it")
    elif "No fork found" not in forks:
        raise Fail(f"the fork panel shows forks where there are none: {forks!r}")
    else:
        passed("the fork panel reports no fork")
    b.wait_for(f"!!document.querySelector('#drills-table tr[data-id=\"{args.drill}\"]')",
               f"the drill list does not show drill {args.drill}")
    timeline = b.wait_for("""(() => { const f = document.getElementById('drill-report');
        const d = f && !f.hidden && f.contentDocument; const t = d && d.getElementById('timeline');
        if (!t) return null;
        return {lanes: d.querySelectorAll('.lane').length, want_lanes: Number(t.dataset.lanes),
                injects: d.querySelectorAll('.inject').length, want_injects: Number(t.dataset.injects),
                text: d.body.textContent}; })()""", f"the report frame of drill {args.drill} holds no timeline chart")
    if timeline["lanes"] != timeline["want_lanes"] or timeline["want_lanes"] < 1:
        raise Fail(f"the drill timeline shows {timeline['lanes']} lanes, the report has {timeline['want_lanes']}")
    if timeline["injects"] != timeline["want_injects"] or timeline["want_injects"] < 1:
        raise Fail(f"the drill timeline shows {timeline['injects']} injects, the report has {timeline['want_injects']}")
    if args.drill_name not in timeline["text"]:
        raise Fail(f"the report frame does not name the scenario {args.drill_name!r}")
    problems.check()
    b.screenshot(os.path.join(out, "drills.png"), "#drills")
    passed(f"drill {args.drill} ({args.drill_name}) is listed; its timeline shows {timeline['lanes']} lanes and "
           f"{timeline['injects']} injects")

    # 7. Live: a new indicator appears without reloading the page.
    before = int(b.eval("document.body.dataset.refreshes"))
    b.eval("window.ctixCheckMark = 'same page'")  # a reload would lose it
    fresh = f"live-{int(time.time())}.dashboard-check.example"
    api_submit(api, creds["token_rw"], {"type": "domain", "value": fresh, "tlp": "green", "tags": ["dashboard-check"]})
    b.wait_for(f"{text_of('#indicators-table tbody')}.includes({json.dumps(fresh)})",
               f"{fresh}, submitted while the page was open, did not appear", timeout=10 + 3 * args.refresh)
    after = int(b.wait_for(f"Number(document.body.dataset.refreshes) > {before} && document.body.dataset.refreshes",
                           "the page did not finish a refresh", timeout=10))
    if b.eval("window.ctixCheckMark") != "same page":
        raise Fail(f"{fresh} appeared only after the page was reloaded")
    problems.check()
    b.screenshot(os.path.join(out, "dashboard.png"))
    passed(f"{fresh}, submitted while the page was open, appeared after {after - before} refreshes, no reload")

    # 8. Sign out.
    b.click("#logout")
    b.wait_for("document.body.dataset.view === 'login'", "signing out did not return to the form")
    if b.eval(VISIBLE.format("#app")):
        raise Fail("signed out, the page still shows the dashboard panels")
    problems.allow("/api/v1/status", 401)
    code = b.eval("fetch('/api/v1/status').then(r => r.status)")
    if code != 401:
        raise Fail(f"after signing out /api/v1/status answered the browser {code}, not 401")
    b.pump(0.5)
    problems.check()
    passed("signing out ends the session: the API answers the browser 401 again")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--browser", required=True)
    p.add_argument("--creds", required=True, help="the node's credentials.json (ctix dev-federation)")
    p.add_argument("--token-field", default="token_ro", help="which token of credentials.json signs in")
    p.add_argument("--node", required=True)
    p.add_argument("--members", required=True, help="comma-separated: every member the graph must show")
    p.add_argument("--connected", default="", help="comma-separated peers whose link must show connected")
    p.add_argument("--down", default="", help="comma-separated peers whose link must show down")
    p.add_argument("--values", required=True, help="comma-separated indicator values the list must show")
    p.add_argument("--text-filter", required=True, help="a text that some but not all indicators contain")
    p.add_argument("--drill", required=True, help="the id of a drill whose report must show")
    p.add_argument("--drill-name", required=True)
    p.add_argument("--fork-origin", default="", help="an origin the fork panel must show (default: none)")
    p.add_argument("--fork-value", default="", help="an indicator value its fork evidence must show")
    p.add_argument("--refresh", type=int, default=1, help="the page's refresh period in seconds")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    b = Browser(args.browser, 1400, 1000)
    try:
        run(args, b, Problems(b))
    except Fail as e:
        try:
            b.screenshot(os.path.join(args.out, "failure.png"))
            print(f"(the page at the failure: {os.path.join(args.out, 'failure.png')})", file=sys.stderr)
        except Exception:
            pass
        print(f"FAIL {e}", file=sys.stderr)
        return 1
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
