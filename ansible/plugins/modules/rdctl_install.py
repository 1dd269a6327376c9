#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rdctl_install
short_description: Install a RustDesk server (hbbs/hbbr) with rdctl
description:
  - Runs C(rdctl --json install systemd) or C(rdctl --json install compose) on the host.
  - rdctl generates the server's Ed25519 key pair on the host before the first start, or keeps
    the existing valid key. The secret key never leaves the host and never passes through
    Ansible; the result carries the public key and its fingerprint only.
  - A re-run that changes nothing reports C(changed=false) (rdctl's plan report says
    C(changed)). In check mode rdctl runs with C(--dry-run) and writes nothing; with C(--diff)
    the diff lists the plan's steps.
  - rdctl must be on the host (the C(rdctl.rustdesk.rustdesk_server) role puts it in
    C(/usr/local/bin)).
version_added: "1.0.0"
author:
  - rdctl contributors
options:
  backend:
    description: How the servers run.
    type: str
    choices: [systemd, compose]
    default: systemd
  relay:
    description:
      - The relay address hbbs advertises to clients, C(HOST) or C(HOST:PORT) (rdctl adds 21117).
    type: str
    required: true
  id_host:
    description: The ID server clients are configured with (default, the relay host).
    type: str
  binaries:
    description:
      - systemd only. A RustDesk server release zip or a directory holding C(hbbs) and C(hbbr),
        on the host; copied into C(/usr/local/bin).
    type: path
  sha256:
    description: systemd only. Pin the release zip given in C(binaries) to this SHA-256.
    type: str
  arch:
    description: systemd only. Which architecture's directory of the release zip to use.
    type: str
  bind:
    description: Address hbbs and hbbr bind to (hbbs/hbbr 1.1.17 or later).
    type: str
  tailnet_only:
    description: systemd only. Restrict both units to loopback and Tailscale addresses.
    type: bool
    default: false
  image:
    description: compose only. The rustdesk-server image reference.
    type: str
  dir:
    description: compose only. Directory of the compose project.
    type: path
  network:
    description: compose only. C(host) networking or a C(bridge) publishing the ports.
    type: str
    choices: [host, bridge]
  no_start:
    description: Write and enable everything, start nothing.
    type: bool
    default: false
  root:
    description:
      - Act on the image tree under this directory (C(rdctl --root)); nothing live is touched.
    type: path
  config:
    description: The deployment record (C(rdctl --config)); default C(/etc/rdctl/rdctl.toml).
    type: path
  rdctl_path:
    description: The rdctl binary; default, C(rdctl) on PATH or in C(/usr/local/bin).
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - The secret key is generated and kept by rdctl on the host. This module has no parameter
    that takes key material.
seealso:
  - module: rdctl.rustdesk.rdctl_facts
  - module: rdctl.rustdesk.rdctl_check
'''

EXAMPLES = r'''
- name: Install hbbs and hbbr as hardened systemd units from a release zip
  rdctl.rustdesk.rdctl_install:
    relay: rd.example.com
    binaries: /var/cache/rdctl/rustdesk-server-linux-amd64.zip
  register: install

- name: Install as a Docker Compose stack
  rdctl.rustdesk.rdctl_install:
    backend: compose
    relay: rd.example.com
    image: rustdesk/rustdesk-server:1.1.14

- name: Build an image tree offline
  rdctl.rustdesk.rdctl_install:
    root: /srv/images/rustdesk
    relay: rd.example.com
'''

RETURN = r'''
public_key:
  description: The public key the server serves (never the secret).
  returned: success
  type: str
  sample: Zn0kRG3hNblVJp7INi6NudU9DM4vm8ttbUT2jgZtg2w=
fingerprint:
  description: The public key's fingerprint.
  returned: success
  type: str
  sample: SHA256:wDvDee4rmKAt+6hs
rdctl:
  description:
    - rdctl's own JSON output (C(dry_run), C(changed), C(steps[]), C(public_key), C(fingerprint),
      C(record), C(started), ...), as documented in rdctl's README.
  returned: always
  type: dict
rc:
  description: rdctl's exit code.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rdctl.rustdesk.plugins.module_utils.rdctl import (
    COMMON_ARGS, ROOT_ARGS, finish, run)


def main():
    spec = dict(
        backend=dict(type='str', choices=['systemd', 'compose'], default='systemd'),
        relay=dict(type='str', required=True),
        id_host=dict(type='str'),
        binaries=dict(type='path'),
        sha256=dict(type='str'),
        arch=dict(type='str'),
        bind=dict(type='str'),
        tailnet_only=dict(type='bool', default=False),
        image=dict(type='str'),
        dir=dict(type='path'),
        network=dict(type='str', choices=['host', 'bridge']),
        no_start=dict(type='bool', default=False),
    )
    spec.update(COMMON_ARGS)
    spec.update(ROOT_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    systemd_only = ['binaries', 'sha256', 'arch', 'tailnet_only']
    compose_only = ['image', 'dir', 'network']
    wrong = compose_only if p['backend'] == 'systemd' else systemd_only
    for name in wrong:
        if p[name]:
            module.fail_json(msg='%s is not an option of backend %s' % (name, p['backend']))

    args = ['install', p['backend'], '--relay', p['relay']]
    for name, flag in [('id_host', '--id-host'), ('binaries', '--binaries'), ('sha256', '--sha256'),
                       ('arch', '--arch'), ('bind', '--bind'), ('image', '--image'),
                       ('dir', '--dir'), ('network', '--network')]:
        if p[name]:
            args += [flag, p[name]]
    if p['tailnet_only']:
        args.append('--tailnet-only')
    if p['no_start']:
        args.append('--no-start')
    rc, data, out, err = run(module, args, dry_run=module.check_mode)
    got = data or {}
    finish(module, rc, data, err, 'rdctl install ' + p['backend'],
           public_key=got.get('public_key'), fingerprint=got.get('fingerprint'))


if __name__ == '__main__':
    main()
