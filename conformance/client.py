"""Keep-alive HTTP(S) client for the conformance suite (standard library only).

One persistent connection to the server named by the base URL; TLS with an optional
CA file and an optional client certificate; a default `Authorization: Bearer` header.
Large request bodies are sent in chunks while watching for an early response, so a
server that answers 413 and closes the connection before reading the whole body is
still heard.
"""

import http.client
import json
import select
import socket
import ssl
import urllib.parse

FHIR_JSON = "application/fhir+json"
USER_AGENT = "caregate-conformance/1.0 (python http.client)"

# Bodies at least this large are streamed with early-response detection.
STREAM_THRESHOLD = 1 << 20
STREAM_CHUNK = 64 * 1024


class TransportError(Exception):
    """The request could not be sent or no response could be read."""


class Response:
    def __init__(self, method, url, status, reason, headers, body, closed_early=False):
        self.method = method
        self.url = url
        self.status = status
        self.reason = reason
        self.headers = headers          # http.client.HTTPMessage (case-insensitive)
        self.body = body                # bytes
        self.closed_early = closed_early  # server answered before the body was sent
        self._json = None
        self._json_done = False

    def header(self, name, default=None):
        return self.headers.get(name, default) if self.headers is not None else default

    def header_all(self, name):
        if self.headers is None:
            return []
        return self.headers.get_all(name) or []

    @property
    def media_type(self):
        """Content-Type without parameters, lower case ('' if absent)."""
        ct = self.header("Content-Type") or ""
        return ct.split(";", 1)[0].strip().lower()

    def json(self):
        """Parsed JSON body, or None if the body is empty or not JSON."""
        if not self._json_done:
            self._json_done = True
            if self.body:
                try:
                    self._json = json.loads(self.body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    self._json = None
        return self._json

    def text(self, limit=300):
        s = self.body.decode("utf-8", "replace") if self.body else ""
        s = " ".join(s.split())
        return s if len(s) <= limit else s[:limit] + "..."

    def summary(self):
        """Short description for failure messages."""
        body = self.json()
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            diags = []
            for issue in body.get("issue") or []:
                if isinstance(issue, dict):
                    d = issue.get("diagnostics") or issue.get("code") or ""
                    expr = issue.get("expression") or issue.get("location") or []
                    if expr:
                        d = "%s [%s]" % (d, ", ".join(str(e) for e in expr))
                    diags.append(d)
            return "%d OperationOutcome: %s" % (self.status, "; ".join(diags) or "(no issues)")
        if isinstance(body, dict) and "resourceType" in body:
            return "%d %s" % (self.status, body.get("resourceType"))
        t = self.text(160)
        return "%d %s%s" % (self.status, self.reason, (": " + t) if t else "")


class Client:
    def __init__(self, base_url, cacert=None, cert=None, key=None, bearer=None,
                 insecure=False, timeout=60.0, verbose=False, log=print):
        u = urllib.parse.urlsplit(base_url.rstrip("/"))
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("base URL must be http(s)://host[:port]/path, got %r" % base_url)
        self.base_url = base_url.rstrip("/")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.base_path = u.path.rstrip("/")
        self.bearer = bearer
        self.timeout = timeout
        self.verbose = verbose
        self.log = log
        self.ssl_context = None
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=cacert) if cacert else ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if cert:
                ctx.load_cert_chain(cert, key)
            self.ssl_context = ctx
        self._conn = None
        self._used = False   # the current connection has carried a request already

    # -- connection management ------------------------------------------------
    def _connect(self):
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        self._conn = conn
        self._used = False
        return conn

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None
        self._used = False

    # -- URLs -----------------------------------------------------------------
    def url(self, path):
        """Absolute URL for a path relative to the base."""
        return self.base_url + ("/" + path.lstrip("/") if path else "")

    def target(self, path_or_url):
        """Request target (path + query) for a base-relative path or an absolute URL."""
        if path_or_url.startswith(("http://", "https://")):
            u = urllib.parse.urlsplit(path_or_url)
            return (u.path or "/") + ("?" + u.query if u.query else "")
        p = path_or_url.lstrip("/")
        return self.base_path + ("/" + p if p else "") or "/"

    # -- requests -------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, json_body=None):
        """Send one request; returns a Response.  `headers` values of None remove a default."""
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = {"Accept": FHIR_JSON, "User-Agent": USER_AGENT}
        if self.bearer:
            hdrs["Authorization"] = "Bearer " + self.bearer
        if body is not None:
            hdrs["Content-Type"] = FHIR_JSON
        for k, v in (headers or {}).items():
            for existing in [h for h in hdrs if h.lower() == k.lower()]:
                del hdrs[existing]
            if v is not None:
                hdrs[k] = v
        target = self.target(path)
        attempts = 2
        while True:
            attempts -= 1
            reused = self._conn is not None and self._used
            try:
                resp = self._once(method, target, body, hdrs)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    ssl.SSLEOFError, http.client.CannotSendRequest,
                    http.client.ResponseNotReady) as e:
                self.close()
                # A keep-alive connection the server closed while idle: retry once on a new one.
                if reused and attempts > 0:
                    continue
                raise TransportError("%s %s: %s: %s" % (method, target, type(e).__name__, e))
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise TransportError("%s %s: %s: %s" % (method, target, type(e).__name__, e))
        if self.verbose:
            self.log("    %s %s -> %d %s%s" % (method, target, resp.status, resp.media_type,
                                             " (%d bytes)" % len(resp.body) if resp.body else ""))
        return resp

    def _once(self, method, target, body, hdrs):
        conn = self._conn or self._connect()
        self._used = True
        if body is None or len(body) < STREAM_THRESHOLD:
            conn.request(method, target, body=body, headers=hdrs)
            closed_early = False
        else:
            closed_early = self._send_streaming(conn, method, target, body, hdrs)
        r = conn.getresponse()
        data = r.read()
        resp = Response(method, target, r.status, r.reason, r.msg, data, closed_early)
        if closed_early or r.will_close:
            self.close()
        return resp

    def _send_streaming(self, conn, method, target, body, hdrs):
        """Send a large body in chunks; stop early if the server has already answered.

        Returns True if the body was not sent completely (the connection cannot be reused).
        """
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        sock = conn.sock
        view = memoryview(body)
        sent = 0
        while sent < len(body):
            if self._readable(sock):
                return True
            try:
                sock.sendall(view[sent:sent + STREAM_CHUNK])
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
                # The server stopped reading; whatever it answered may still be readable.
                return True
            sent += STREAM_CHUNK
        return False

    @staticmethod
    def _readable(sock):
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        try:
            r, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    # -- conveniences ---------------------------------------------------------
    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def delete(self, path, headers=None):
        return self.request("DELETE", path, headers=headers)

    def post(self, path, resource, headers=None):
        return self.request("POST", path, json_body=resource, headers=headers)

    def put(self, path, resource, headers=None):
        return self.request("PUT", path, json_body=resource, headers=headers)
