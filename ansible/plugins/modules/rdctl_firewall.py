#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rdctl_firewall
short_description: Admit a RustDesk server's ports in the host firewall with rdctl
description:
  - Runs C(rdctl --json firewall --apply) (C(state=present)) or C(rdctl --json firewall --remove)
    (C(state=absent)) on the host, for tcp 21115-21119 and udp 21116 through nftables
    (C(table inet rdctl)), ufw or firewalld, detected unless C(backend) says which.
  - C(tailnet_only) admits the ports on C(tailscale0) (and loopback) only.
  - Each change is a step of rdctl's plan that is pending only while the backend lacks the rule,
    so a re-run reports C(changed=false). Check mode runs rdctl with C(--dry-run).
version_added: "1.0.0"
author:
  - rdctl contributors
options:
  state:
    description: Whether the rules are there.
    type: str
    choices: [present, absent]
    default: present
  tailnet_only:
    description: Admit the ports on the tailnet interface only (with C(state=present)).
    type: bool
    default: false
  backend:
    description: The firewall to use; default, detected (ufw when active, else firewalld when running, else nftables).
    type: str
    choices: [nftables, ufw, firewalld]
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
notes:
  - The live firewall only; there is no C(root) option (an image tree has no running firewall).
'''

EXAMPLES = r'''
- name: Admit the server's ports
  rdctl.rustdesk.rdctl_firewall:

- name: Admit them on the tailnet only
  rdctl.rustdesk.rdctl_firewall:
    tailnet_only: true
'''

RETURN = r'''
backend:
  description: The firewall backend rdctl used.
  returned: success
  type: str
rdctl:
  description: rdctl's own JSON output (C(backend), C(reason), C(commands[]), C(steps[]), ...).
  returned: always
  type: dict
rc:
  description: rdctl's exit code.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rdctl.rustdesk.plugins.module_utils.rdctl import COMMON_ARGS, finish, run


def main():
    spec = dict(
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        tailnet_only=dict(type='bool', default=False),
        backend=dict(type='str', choices=['nftables', 'ufw', 'firewalld']),
    )
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    args = ['firewall', '--apply' if p['state'] == 'present' else '--remove']
    if p['tailnet_only'] and p['state'] == 'present':
        args.append('--tailnet-only')
    if p['backend']:
        args += ['--backend', p['backend']]
    rc, data, out, err = run(module, args, dry_run=module.check_mode)
    finish(module, rc, data, err, 'rdctl firewall', backend=(data or {}).get('backend'))


if __name__ == '__main__':
    main()
