#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Mints N authorization codes for a benchmark: signs in once through the login page, then
asks /oauth/v2/authorize again and again with that browser session (64 connections in
parallel), printing one code per line. With a client secret as 7th argument, exchanges each
code (scope offline_access) and prints the refresh tokens instead.
usage: codes.py ISSUER CLIENT_ID REDIRECT LOGIN PASSWORD N [CLIENT_SECRET]"""
import base64
import json
import http.client
import os
import re
import sys
import threading
import time
import urllib.parse

issuer, client_id, redirect, login, password, count = sys.argv[1:7]
secret = sys.argv[7] if len(sys.argv) > 7 else None
count = int(count)
host = urllib.parse.urlsplit(issuer).netloc
authz = '/oauth/v2/authorize?' + urllib.parse.urlencode({
    'client_id': client_id, 'redirect_uri': redirect, 'response_type': 'code',
    'scope': 'openid profile offline_access' if secret else 'openid profile', 'state': 's',
    'nonce': 'n'})


def cookies_of(resp, jar):
    for k, v in resp.getheaders():
        if k.lower() == 'set-cookie':
            name, _, rest = v.partition('=')
            jar[name] = rest.split(';', 1)[0]


def cookie_header(jar):
    return '; '.join('%s=%s' % kv for kv in jar.items())


def code_of(location):
    m = re.search(r'[?&]code=([^&]+)', location or '')
    return m.group(1) if m else None


jar = {}
c = http.client.HTTPConnection(host)
c.request('GET', authz)
r = c.getresponse(); r.read(); cookies_of(r, jar)
login_url = r.getheader('location')
c.request('GET', login_url, headers={'Cookie': cookie_header(jar)})
r = c.getresponse(); page = r.read().decode(); cookies_of(r, jar)
arid = re.search(r'name="authRequestID" value="([^"]*)"', page).group(1)
csrf = re.search(r'name="csrf" value="([^"]*)"', page).group(1)
body = urllib.parse.urlencode({'authRequestID': arid, 'csrf': csrf, 'loginName': login,
                               'password': password})
c.request('POST', '/ui/login/login', body=body, headers={
    'Cookie': cookie_header(jar), 'Content-Type': 'application/x-www-form-urlencoded'})
r = c.getresponse(); r.read(); cookies_of(r, jar)
first = code_of(r.getheader('location'))
if not first:
    sys.exit('codes.py: sign-in did not redirect with a code')
basic = 'Basic ' + base64.b64encode(('%s:%s' % (client_id, secret or '')).encode()).decode()
lock = threading.Lock()
out = []
pending = [first]


def exchange(conn, code):
    body = urllib.parse.urlencode({'grant_type': 'authorization_code', 'code': code,
                                   'redirect_uri': redirect})
    for attempt in range(50):
        conn.request('POST', '/oauth/v2/token', body=body, headers={
            'Authorization': basic, 'Content-Type': 'application/x-www-form-urlencoded'})
        resp = conn.getresponse()
        data = json.loads(resp.read() or b'{}')
        if resp.status != 503:  # 503: the first burst queues for the secret's bcrypt
            break
        time.sleep(0.1)
    if 'refresh_token' not in data:
        print('codes.py: no refresh token (status %d: %s)' % (resp.status, data), file=sys.stderr)
        os._exit(1)
    return data['refresh_token']


def worker():
    """Mints codes (and, with a secret, exchanges each at once: codes expire in a minute)."""
    conn = http.client.HTTPConnection(host)
    while True:
        with lock:
            if len(out) + len(pending) >= count and not pending:
                return
            code = pending.pop() if pending else None
        if code is None:
            conn.request('GET', authz, headers={'Cookie': cookie_header(jar)})
            resp = conn.getresponse(); resp.read()
            code = code_of(resp.getheader('location'))
            if not code:
                print('codes.py: authorize with a session gave no code (status %d)' % resp.status,
                      file=sys.stderr)
                os._exit(1)
        item = exchange(conn, code) if secret else code
        with lock:
            if len(out) < count:
                out.append(item)


ts = [threading.Thread(target=worker) for _ in range(64)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print('\n'.join(out[:count]))
