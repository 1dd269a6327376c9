#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rdctl_rotate
short_description: Rotate a RustDesk server's key with rdctl (rotate, stage, commit, restore)
description:
  - Runs C(rdctl --json rotate) on the host, one crash-safe transaction; rdctl backs the current
    pair up, switches to the new one, starts the services and verifies with the punch-hole probe
    that hbbs serves the new key and rejects the old one. On any failure rdctl puts the backup
    back, starts the services again and exits 1; this module then fails, so a play with
    C(any_errors_fatal) stops there.
  - The secret keys never leave the host; the result carries public keys, fingerprints and the
    backup's path only.
  - In check mode rdctl runs with C(--dry-run) (the plan, nothing changes); it fails where the
    real run would fail for a reason known in advance (nothing staged, a missing backup).
version_added: "1.0.0"
author:
  - rdctl contributors
options:
  action:
    description:
      - C(rotate) makes a new key and switches to it; C(stage) only generates the next key (client
        media can be built for it with M(rdctl.rustdesk.rdctl_export) and C(staged));
        C(commit) switches to the staged key; C(restore) puts the backup C(stamp) back;
        C(resume) finishes or rolls back an interrupted rotation.
    type: str
    choices: [rotate, stage, commit, restore, resume]
    default: rotate
  stamp:
    description: The backup to restore (C(rdctl backups list)), with C(action=restore).
    type: str
  export_dir:
    description: After the switch (or stage), lay out the new key's client configuration there.
    type: path
  verify:
    description: Verify with the punch-hole probe that the server serves the new key.
    type: bool
    default: true
  root:
    description: Act on the image tree under this directory (C(rdctl --root)).
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
notes:
  - RustDesk has no overlap window; clients show "Key mismatch" until they get the new
    configuration. Stage first, export the staged media, then commit.
seealso:
  - module: rdctl.rustdesk.rdctl_export
  - module: rdctl.rustdesk.rdctl_check
'''

EXAMPLES = r'''
- name: Rotate the key (verified; rolled back by rdctl on failure)
  rdctl.rustdesk.rdctl_rotate:
  register: rotation

- name: Stage the next key
  rdctl.rustdesk.rdctl_rotate:
    action: stage

- name: Switch to the staged key
  rdctl.rustdesk.rdctl_rotate:
    action: commit

- name: Put a backup back
  rdctl.rustdesk.rdctl_rotate:
    action: restore
    stamp: 20261122T015501Z
'''

RETURN = r'''
old_public_key:
  description: The key served before the switch.
  returned: when a switch happened
  type: str
new_public_key:
  description: The key served after the switch (or the staged key, with C(action=stage)).
  returned: when a key was switched or staged
  type: str
backup:
  description: Path, on the host, of the backup of the previous pair.
  returned: when a switch happened
  type: str
verified:
  description: Whether rdctl's probe saw hbbs serve the new key and reject the old one.
  returned: when a switch happened
  type: bool
rdctl:
  description: rdctl's own JSON output (C(op), C(steps[]), C(outage_ms), ...).
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
        action=dict(type='str', choices=['rotate', 'stage', 'commit', 'restore', 'resume'], default='rotate'),
        stamp=dict(type='str'),
        export_dir=dict(type='path'),
        verify=dict(type='bool', default=True),
    )
    spec.update(COMMON_ARGS)
    spec.update(ROOT_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('action', 'restore', ['stamp'])])
    p = module.params
    if p['stamp'] and p['action'] != 'restore':
        module.fail_json(msg='stamp is only for action=restore')
    args = ['rotate']
    if p['action'] == 'restore':
        args += ['--restore', p['stamp']]
    elif p['action'] != 'rotate':
        args.append('--' + p['action'])
    if p['export_dir']:
        args += ['--export', p['export_dir']]
    if not p['verify']:
        args.append('--no-verify')
    rc, data, out, err = run(module, args, dry_run=module.check_mode)
    got = data or {}
    finish(module, rc, data, err, 'rdctl rotate' + ('' if p['action'] == 'rotate' else ' ' + p['action']),
           old_public_key=got.get('old_public_key'),
           new_public_key=got.get('new_public_key') or got.get('public_key'),
           backup=got.get('backup'), verified=got.get('verified'))


if __name__ == '__main__':
    main()
