#!/usr/bin/env python3
"""Posts a body as Python's http.client does, and prints the status and body of the answer.

For tests/gateway/net_linger_test.cpp: http.client writes the request line, the headers and the
whole body before it reads anything (it never waits for 100 Continue), so it sees a refusal of a
body over the limit only if the server reads on after refusing. Exits non-zero, with Python's
error on stderr, when the connection breaks before the answer is read.

usage: post_without_waiting.py PORT CA_FILE CERT_FILE KEY_FILE BODY_BYTES
"""
import http.client
import ssl
import sys

port, ca_file, cert_file, key_file, body_bytes = sys.argv[1:]
context = ssl.create_default_context(cafile=ca_file)
context.load_cert_chain(cert_file, key_file)
connection = http.client.HTTPSConnection("127.0.0.1", int(port), context=context, timeout=30)
connection.request("POST", "/Bundle", body=b"x" * int(body_bytes),
                   headers={"Content-Type": "application/fhir+json"})
response = connection.getresponse()
print(response.status)
print(response.read().decode())
