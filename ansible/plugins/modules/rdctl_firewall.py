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
  - C(changed) is whether the firewall changed. rdctl runs its commands again on every
    C(--apply) (loading the same rules changes nothing), so the module compares the backend's own
    listing before and after (C(nft list table inet rdctl), C(ufw status verbose),
    C(firewall-cmd --list-all)); with nftables it runs nothing when the table already holds
    exactly rdctl's rules. A re-run reports C(changed=false).
  - Check mode runs rdctl with C(--dry-run); with nftables it reports a change only when the table
    differs from rdctl's rules, with ufw and firewalld whenever rdctl would run its commands.
  - C(state=absent) removes what C(--apply) added; each removal is pending only while the backend
    shows the rule.
  - Rules of someone else's are never removed. rdctl's warnings become the module's, among them
    the firewalld port rules that still admit rdctl's ports (C(port_rules_left), with the commands
    that would remove them) and the ufw rules without rdctl's comment that made an add of rdctl's
    unneeded (C(others_rules)).
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
from ansible_collections.rdctl.rustdesk.plugins.module_utils.rdctl import (
    COMMON_ARGS, diff_from_report, error_message, rdctl_warnings, run)

def nft_table(script):
    """The table block of rdctl's nftables script, as nft lists it once loaded."""
    i = script.find('table inet rdctl {')
    return normalize(script[i:]) if i >= 0 else None


def normalize(text):
    return '\n'.join(line.strip() for line in text.strip().splitlines() if line.strip())


def warn(module, err):
    """Pass rdctl's warnings on: among them the rules it left alone because they are not
    rdctl's (port_rules_left, others_rules)."""
    for w in rdctl_warnings(err):
        module.warn(w)


def main():
    spec = dict(
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        tailnet_only=dict(type='bool', default=False),
        backend=dict(type='str', choices=['nftables', 'ufw', 'firewalld']),
    )
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    flags = []
    if p['tailnet_only'] and p['state'] == 'present':
        flags.append('--tailnet-only')
    if p['backend']:
        flags += ['--backend', p['backend']]

    if p['state'] == 'absent':
        # Each removal is pending only while the backend shows the rule: the report is exact.
        rc, data, out, err = run(module, ['firewall', '--remove'] + flags, dry_run=module.check_mode)
        if rc != 0 or data is None:
            module.fail_json(msg=error_message(rc, err, 'rdctl firewall --remove'), rc=rc, rdctl=data)
        warn(module, err)
        result = dict(changed=bool(data.get('changed')), rdctl=data, rc=rc, backend=data.get('backend'),
                      msg='rdctl firewall --remove: %s' % ('changed' if data.get('changed') else 'unchanged'))
        if module._diff:
            result['diff'] = diff_from_report(data)
        module.exit_json(**result)

    # The backend and the commands rdctl would run (printing them changes nothing).
    rc, planned, out, err = run(module, ['firewall'] + flags)
    if rc != 0 or planned is None:
        module.fail_json(msg=error_message(rc, err, 'rdctl firewall'), rc=rc, rdctl=planned)
    backend = planned.get('backend')
    if backend == 'nftables':
        scripts = [c.get('stdin') or '' for c in planned.get('commands') or []]
        want = nft_table(scripts[0]) if len(scripts) == 1 else None
        nft = module.get_bin_path('nft', opt_dirs=['/usr/sbin', '/sbin'])
        if want and nft:
            nrc, cur, nerr = module.run_command([nft, 'list', 'table', 'inet', 'rdctl'], environ_update={'LANG': 'C'})
            if nrc == 0 and normalize(cur) == want:
                module.exit_json(changed=False, rdctl=planned, rc=0, backend=backend,
                                 msg='rdctl firewall: table inet rdctl already holds these rules')
    # A real apply reports changed only where the firewall changed (rdctl compares nft's
    # table, reads ufw's "Skipping" lines and firewalld's already-enabled codes); a dry run
    # cannot know and reports every command, hence the nftables shortcut above.
    rc, data, out, err = run(module, ['firewall', '--apply'] + flags, dry_run=module.check_mode)
    if rc != 0 or data is None:
        module.fail_json(msg=error_message(rc, err, 'rdctl firewall --apply'), rc=rc, rdctl=data, backend=backend)
    warn(module, err)
    changed = bool(data.get('changed'))
    result = dict(changed=changed, rdctl=data, rc=rc, backend=backend,
                  msg='rdctl firewall --apply: %s' % ('changed' if changed else 'unchanged'))
    if module._diff and changed:
        result['diff'] = diff_from_report(data)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
