#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rdctl_check
short_description: Check RustDesk servers from the outside with rdctl (protocol and key)
description:
  - Runs C(rdctl --json check ADDRESS --key PUBLIC_KEY) for every target, concurrently, from the
    host the task runs on; meant for the controller (with C(delegate_to=localhost) and C(run_once=true))
    against the whole fleet. One real exchange per port (TestNat, a punch-hole request carrying
    the expected key, RegisterPeer over UDP, WebSocket, and a relay pairing).
  - For each target's C(reject_keys) (old keys, e.g. before a rotation) it asks hbbs with that key
    (C(--ports rendezvous-tcp)) and requires C(mismatch), that is, the server no longer accepts it.
  - Fails, naming the hosts, when any target fails a probe, serves another key, or accepts a key it
    should reject; also when two targets are given the same public key. Never changes anything.
version_added: "1.0.0"
author:
  - rdctl contributors
options:
  targets:
    description: The servers to check.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A name for the report (the inventory host name).
        type: str
        required: true
      address:
        description: C(HOST), C(HOST:PORT) or C([IPv6]:PORT) to reach hbbs at.
        type: str
        required: true
      public_key:
        description: The public key the server must serve.
        type: str
        required: true
      reject_keys:
        description: Public keys the server must answer with a key mismatch.
        type: list
        elements: str
        default: []
  strict:
    description: Also present a wrong key, to tell a server enforcing the key from one enforcing none.
    type: bool
    default: true
  timeout:
    description: Bound for each probe (C(rdctl check --timeout)).
    type: str
    default: 3s
  concurrency:
    description: How many targets are checked at once.
    type: int
    default: 16
  rdctl_path:
    description: The rdctl binary on the host the task runs on; default, C(rdctl) on PATH.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Only public keys are passed; this module never sees a secret key.
seealso:
  - module: rdctl.rustdesk.rdctl_facts
'''

EXAMPLES = r'''
- name: Check every server of the play from the controller
  rdctl.rustdesk.rdctl_check:
    targets: "{{ ansible_play_hosts | map('extract', hostvars, 'rdctl_check_target') | list }}"
  delegate_to: localhost
  run_once: true

- name: After a rotation, the new key is served and the old one rejected
  rdctl.rustdesk.rdctl_check:
    targets:
      - name: "{{ inventory_hostname }}"
        address: "{{ ansible_host }}"
        public_key: "{{ rotation.new_public_key }}"
        reject_keys: ["{{ rotation.old_public_key }}"]
  delegate_to: localhost
'''

RETURN = r'''
hosts:
  description:
    - Per target name, C(ok), C(address), C(key_status) (C(match), C(mismatch), C(unenforced),
      C(unknown)), C(rejected) (per rejected key, the key status seen, where C(mismatch) is right),
      C(failed_probes) and C(error).
  returned: always
  type: dict
failed_hosts:
  description: Names of the targets that failed.
  returned: always
  type: list
  elements: str
rdctl:
  description: Per target name, rdctl check's own JSON output for the expected key.
  returned: always
  type: dict
'''

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rdctl.rustdesk.plugins.module_utils.rdctl import rdctl_bin


def run_check(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300,
                              env={'LANG': 'C', 'LC_ALL': 'C', 'PATH': '/usr/local/bin:/usr/bin:/bin'})
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, None, str(e)
    out = proc.stdout.decode('utf-8', 'replace')
    err = proc.stderr.decode('utf-8', 'replace')
    try:
        data = json.loads(out) if out.strip() else None
    except ValueError:
        data = None
    return proc.returncode, data, err


def first_target(data):
    targets = (data or {}).get('targets') or []
    return targets[0] if targets else {}


def check_one(rdctl, t, strict, timeout):
    base = [rdctl, '--json', 'check', '--timeout', timeout]
    argv = base + ['--key', t['public_key']] + (['--strict'] if strict else []) + ['--', t['address']]
    rc, data, err = run_check(argv)
    tgt = first_target(data)
    res = dict(address=t['address'], key_status=tgt.get('key_status', 'unknown'), rc=rc,
               failed_probes=[p.get('name') for p in tgt.get('probes') or [] if not p.get('ok')],
               rejected={}, error='')
    ok = rc == 0 and bool(tgt.get('ok')) and res['key_status'] == 'match'
    if rc != 0 and not tgt:
        res['error'] = ' '.join(line for line in err.splitlines() if line.startswith('rdctl: error:')) or err.strip()[-300:]
    for old in t.get('reject_keys') or []:
        rrc, rdata, rerr = run_check(base + ['--key', old, '--ports', 'rendezvous-tcp', '--', t['address']])
        st = first_target(rdata).get('key_status', 'unknown')
        res['rejected'][old] = st
        if st != 'mismatch':
            ok = False
    res['ok'] = ok
    return t['name'], res, data


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type='list', elements='dict', required=True, options=dict(
                name=dict(type='str', required=True),
                address=dict(type='str', required=True),
                public_key=dict(type='str', required=True, no_log=False),
                reject_keys=dict(type='list', elements='str', default=[], no_log=False),
            )),
            strict=dict(type='bool', default=True),
            timeout=dict(type='str', default='3s'),
            concurrency=dict(type='int', default=16),
            rdctl_path=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    targets = p['targets']
    # Fleet rule: no two servers may serve the same key.
    by_key = {}
    for t in targets:
        by_key.setdefault(t['public_key'], []).append(t['name'])
    dups = [names for names in by_key.values() if len(names) > 1]
    if dups:
        module.fail_json(msg='hosts share a key: ' + '; '.join(' and '.join(sorted(n)) for n in dups),
                         duplicates=dups, hosts={}, failed_hosts=sorted(n for d in dups for n in d), rdctl={})
    rdctl = rdctl_bin(module)
    hosts, raw = {}, {}
    with ThreadPoolExecutor(max_workers=max(1, min(p['concurrency'], len(targets) or 1))) as pool:
        for name, res, data in pool.map(lambda t: check_one(rdctl, t, p['strict'], p['timeout']), targets):
            hosts[name] = res
            raw[name] = data
    failed = sorted(n for n, r in hosts.items() if not r['ok'])
    if failed:
        why = []
        for n in failed:
            r = hosts[n]
            bits = ['key %s' % r['key_status']]
            if r['failed_probes']:
                bits.append('failed probes: ' + ','.join(r['failed_probes']))
            accepted = [k for k, st in r['rejected'].items() if st != 'mismatch']
            if accepted:
                bits.append('still accepts %d old key(s)' % len(accepted))
            if r['error']:
                bits.append(r['error'])
            why.append('%s (%s): %s' % (n, r['address'], '; '.join(bits)))
        module.fail_json(msg='rdctl check failed for ' + ' | '.join(why), hosts=hosts,
                         failed_hosts=failed, rdctl=raw, changed=False)
    module.exit_json(changed=False, msg='%d servers serve their keys on every port' % len(hosts),
                     hosts=hosts, failed_hosts=[], rdctl=raw)


if __name__ == '__main__':
    main()
