#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs (committed beside this script):
the rewriter's statement corpus (src/rewrite/tests/corpus.rs), and
protocol messages as clients and servers send them. Run from fuzz/:
python3 seeds/make.py"""
import ast, pathlib, re, struct

here = pathlib.Path(__file__).parent
corpus = (here / "../../src/rewrite/tests/corpus.rs").read_text()
body = corpus[corpus.index("&[") : corpus.index("\n    ]")]
for i, lit in enumerate(re.findall(r'^\s*("(?:[^"\\]|\\.)*"),', body, re.M)):
    sql = ast.literal_eval(lit)
    (here / "rewrite" / f"corpus_{i:03}.sql").write_text(sql)

def msg(tag, body):
    return tag + struct.pack("!i", len(body) + 4) + body

def cstr(s):
    return s.encode() + b"\0"

frames = {
    "query": msg(b"Q", cstr("SELECT * FROM tasks WHERE id = 1")),
    "extended": msg(b"P", cstr("s1") + cstr("DELETE FROM projects WHERE id = $1") + struct.pack("!hi", 1, 20))
    + msg(b"B", cstr("") + cstr("s1") + struct.pack("!hh", 0, 1) + struct.pack("!i", 1) + b"1" + struct.pack("!h", 0))
    + msg(b"D", b"P" + cstr(""))
    + msg(b"E", cstr("") + struct.pack("!i", 0))
    + msg(b"S", b""),
    "server": msg(b"R", struct.pack("!i", 0))
    + msg(b"K", struct.pack("!ii", 4242, 17))
    + msg(b"C", cstr("UPDATE 3"))
    + msg(b"Z", b"I"),
    "sasl": msg(b"R", struct.pack("!i", 10) + cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0")
    + msg(b"p", cstr("SCRAM-SHA-256-PLUS") + struct.pack("!i", 12) + b"p=tls-server"),
}
for name, data in frames.items():
    # First byte: the piece sizes' count and the size limit (see the target).
    (here / "wire_frames" / name).write_bytes(b"\x03\x05\x40\x01" + data)

def startup(params):
    body = struct.pack("!i", 196608) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return struct.pack("!i", len(body) + 4) + body

starts = {
    "startup": startup([("user", "app"), ("database", "app"), ("application_name", "psql")]),
    "startup_tombstone": startup([("user", "app"), ("tombstone.client_addr", "1.2.3.4"), ("options", "-c search_path=x")]),
    "ssl": struct.pack("!ii", 8, 80877103),
    "gss": struct.pack("!ii", 8, 80877104),
    "cancel": struct.pack("!iiii", 16, 80877102, 4242, 17),
}
for name, data in starts.items():
    (here / "wire_startup" / name).write_bytes(data)
