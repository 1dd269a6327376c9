#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rdctl_export
short_description: Write a RustDesk server's client configuration on the host with rdctl
description:
  - Runs C(rdctl --json export --out DEST) on the host. With C(format=all) (the default) DEST is a
    provisioning tree (C(windows/rustdesk/RustDesk2.toml), C(install-config.ps1), C(linux/),
    C(macos/), C(config-string.txt), C(installer-name.txt), C(config-qr.png), C(README.txt)).
  - Everything is derived from the deployment record and the public key; the secret key is never
    part of any output. Fetch the files to the controller with M(ansible.builtin.fetch) (the
    C(rdctl.rustdesk.rustdesk_server) role does).
  - An identical re-run reports C(changed=false); check mode lists what would be written.
version_added: "1.0.0"
author:
  - rdctl contributors
options:
  dest:
    description: Directory (C(format=all)) or file (any other format) to write, on the host.
    type: path
    required: true
  format:
    description: What to write.
    type: str
    choices: [all, toml, server.conf, string, exe-name, exe-name-licensed, json, ps1, qr]
    default: all
  staged:
    description: Export the staged next key (see M(rdctl.rustdesk.rdctl_rotate) C(action=stage)).
    type: bool
    default: false
  id_host:
    description: Override the ID server.
    type: str
  relay:
    description: Override the relay.
    type: str
  api:
    description: Override the API server URL.
    type: str
  root:
    description: Read the deployment from the image tree under this directory (C(rdctl --root)).
    type: path
  config:
    description: The deployment record (C(rdctl --config)).
    type: path
  rdctl_path:
    description: The rdctl binary; default, C(rdctl) on PATH or in C(/usr/local/bin).
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
seealso:
  - module: rdctl.rustdesk.rdctl_rotate
'''

EXAMPLES = r'''
- name: Lay out the client media on the host
  rdctl.rustdesk.rdctl_export:
    dest: /var/lib/rdctl-export
  register: media

- name: Bring them to the controller
  ansible.builtin.fetch:
    src: "{{ item.path }}"
    dest: "clients/{{ inventory_hostname }}/{{ item.path | relpath('/var/lib/rdctl-export') }}"
    flat: true
  loop: "{{ media.files }}"
'''

RETURN = r'''
files:
  description: The files written (or that would be), with C(path), C(format) and C(changed).
  returned: success
  type: list
  elements: dict
public_key:
  description: The public key the media carry.
  returned: success
  type: str
fingerprint:
  description: Its fingerprint.
  returned: success
  type: str
rdctl:
  description: rdctl's own JSON output (C(host), C(relay), C(api), C(key), C(steps[]), C(files[]), ...).
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
        dest=dict(type='path', required=True),
        format=dict(type='str', default='all',
                    choices=['all', 'toml', 'server.conf', 'string', 'exe-name', 'exe-name-licensed', 'json', 'ps1', 'qr']),
        staged=dict(type='bool', default=False),
        id_host=dict(type='str'),
        relay=dict(type='str'),
        api=dict(type='str'),
    )
    spec.update(COMMON_ARGS)
    spec.update(ROOT_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    args = ['export', '--format', p['format'], '--out', p['dest']]
    if p['staged']:
        args.append('--staged')
    for name, flag in [('id_host', '--id-host'), ('relay', '--relay'), ('api', '--api')]:
        if p[name]:
            args += [flag, p[name]]
    rc, data, out, err = run(module, args, dry_run=module.check_mode)
    got = data or {}
    finish(module, rc, data, err, 'rdctl export', files=got.get('files') or [],
           public_key=got.get('key'), fingerprint=got.get('fingerprint'))


if __name__ == '__main__':
    main()
