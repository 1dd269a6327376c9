#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rdctl_facts
short_description: Gather a RustDesk server's public facts with rdctl
description:
  - Runs C(rdctl --json status) on the host (read-only) and sets the fact C(rdctl_server) with
    public data only. Whether a deployment is recorded, its backend, ID host and relay, the
    public key hbbs serves (derived from the secret as hbbs does) and its fingerprint, whether
    the key is valid, the units' or containers' states and whether a next key is staged.
  - Nothing secret is returned. The fleet rule "no two hosts serve the same key" is checked from
    these facts (the C(rdctl.rustdesk.rustdesk_server) role does it with the
    assert on these facts).
version_added: "1.0.0"
author:
  - rdctl contributors
options:
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
    support: none
  facts:
    support: full
'''

EXAMPLES = r'''
- name: Gather the server's public key and state
  rdctl.rustdesk.rdctl_facts:

- name: Show it
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} serves {{ rdctl_server.public_key }} ({{ rdctl_server.fingerprint }})"
'''

RETURN = r'''
ansible_facts:
  description: Facts added.
  returned: always
  type: complex
  contains:
    rdctl_server:
      description:
        - C(installed) (a deployment record exists), C(backend), C(origin), C(id_host), C(relay),
          C(working_dir), C(public_key), C(fingerprint), C(key_valid), C(pub_file_matches),
          C(staged), C(staged_public_key), C(backups) (how many), C(last_rotation), C(units) (C(name), C(active_state)), C(containers) (C(name), C(state)).
      returned: always
      type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rdctl.rustdesk.plugins.module_utils.rdctl import (
    COMMON_ARGS, ROOT_ARGS, error_message, run)


def facts_from_status(st):
    """Only the public fields of rdctl status --json, by name."""
    key = st.get('key') or {}
    staged = st.get('staged') or {}
    backups = st.get('backups') or {}
    return dict(
        installed=True,
        backend=st.get('backend'),
        origin=st.get('origin'),
        id_host=st.get('id_host'),
        relay=st.get('relay'),
        working_dir=st.get('working_dir'),
        public_key=key.get('public_key'),
        fingerprint=key.get('fingerprint'),
        key_valid=bool(key.get('valid')),
        pub_file_matches=bool(key.get('pub_file_matches')),
        staged=bool(staged.get('present')),
        staged_public_key=staged.get('public_key'),
        backups=backups.get('count', 0),
        last_rotation=backups.get('last_rotation'),
        units=[dict(name=u.get('name'), active_state=u.get('active_state'))
               for u in st.get('units') or []],
        containers=[dict(name=c.get('service'), state=c.get('state'))
                    for c in st.get('containers') or []],
    )


def record_path(params):
    if params.get('config'):
        return params['config']
    return (params.get('root') or '').rstrip('/') + '/etc/rdctl/rdctl.toml'


def main():
    spec = dict()
    spec.update(COMMON_ARGS)
    spec.update(ROOT_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    # No deployment record: not installed, which is a fact, not a failure.
    if not os.path.lexists(record_path(module.params)):
        module.exit_json(changed=False, ansible_facts=dict(rdctl_server=dict(installed=False)))
    rc, data, out, err = run(module, ['status'])
    if rc != 0:
        module.fail_json(msg=error_message(rc, err, 'rdctl status'), rc=rc)
    if data is None:
        module.fail_json(msg='rdctl status printed no JSON document', rc=rc)
    module.exit_json(changed=False, ansible_facts=dict(rdctl_server=facts_from_status(data)))


if __name__ == '__main__':
    main()
