# -*- coding: utf-8 -*-
# Shared by the rdctl.rustdesk modules: find rdctl on the host, run it with --json, and turn
# its plan report into Ansible's changed/diff/failed.
#
# The modules never read a key file and never pass key material to rdctl: rdctl itself reads
# and writes the keys on the host, and its output carries public keys only (rdctl refuses to
# print a secret in any form, and redacts one as a last line of defence).

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

# Where the role installs rdctl; searched after PATH (an Ansible login often has a short PATH).
RDCTL_DIRS = ['/usr/local/bin', '/usr/local/sbin', '/usr/bin', '/usr/sbin']

# Options every module shares; each module adds them to its argument_spec.
COMMON_ARGS = dict(
    rdctl_path=dict(type='path'),
    config=dict(type='path'),
)

# Options of the modules that change a host.
ROOT_ARGS = dict(
    root=dict(type='path'),
)


def rdctl_bin(module):
    path = module.params.get('rdctl_path')
    if path:
        return path
    return module.get_bin_path('rdctl', required=True, opt_dirs=RDCTL_DIRS)


def global_flags(module, dry_run=False):
    """The flags before the command: --json, --root, --config, --dry-run."""
    argv = ['--json']
    if module.params.get('root'):
        argv += ['--root', module.params['root']]
    if module.params.get('config'):
        argv += ['--config', module.params['config']]
    if dry_run:
        argv.append('--dry-run')
    return argv


def run(module, args, dry_run=False):
    """Runs rdctl with --json and returns (rc, parsed JSON or None, stdout, stderr)."""
    argv = [rdctl_bin(module)] + global_flags(module, dry_run) + list(args)
    rc, out, err = module.run_command(argv, environ_update={'LANG': 'C', 'LC_ALL': 'C'})
    data = None
    if out and out.strip():
        try:
            data = json.loads(out)
        except ValueError:
            data = None
    return rc, data, out, err


def error_message(rc, err, what):
    """rdctl's own error and hint lines, else the last lines of stderr."""
    lines = [line for line in (err or '').splitlines()
             if line.startswith('rdctl: error:') or line.startswith('rdctl: hint:')]
    if not lines:
        lines = [line for line in (err or '').splitlines() if line.strip()][-5:]
    detail = '; '.join(lines) if lines else 'no message'
    return '%s failed (exit %d): %s' % (what, rc, detail)


def diff_from_report(report):
    """A before/after diff from a plan report's steps: one line per step that changes
    something, '<action> <target>: <before|after>'. Steps carry public data only (paths,
    fingerprints, public keys); a step without before/after says so."""
    before, after = [], []
    for step in (report or {}).get('steps') or []:
        if not step.get('changed'):
            continue
        head = '%s %s' % (step.get('action', ''), step.get('target', ''))
        before.append('%s: %s' % (head, step.get('before') or '(as it is)'))
        after.append('%s: %s' % (head, step.get('after') or '(changed)'))
    return dict(before_header='rdctl plan (before)', after_header='rdctl plan (after)',
                before='\n'.join(before) + ('\n' if before else ''),
                after='\n'.join(after) + ('\n' if after else ''))


def finish(module, rc, data, err, what, **extra):
    """exit_json/fail_json from an rdctl run: changed is the report's changed, rdctl its
    whole JSON document."""
    if rc != 0:
        module.fail_json(msg=error_message(rc, err, what), rc=rc, rdctl=data,
                         stderr_lines=(err or '').splitlines()[-20:], changed=bool(data and data.get('changed')),
                         **extra)
    if data is None:
        module.fail_json(msg='%s printed no JSON document' % what, rc=rc)
    result = dict(changed=bool(data.get('changed')), rdctl=data, rc=rc,
                  msg='%s: %s' % (what, 'changed' if data.get('changed') else 'unchanged'))
    result.update(extra)
    if module._diff:
        result['diff'] = diff_from_report(data)
    module.exit_json(**result)



def rdctl_warnings(err):
    """rdctl's warning lines on stderr ("rdctl: warning: ..."), without the prefix, for
    module.warn: rdctl says there what it left alone or could not check."""
    prefix = 'rdctl: warning: '
    return [line[len(prefix):] for line in (err or '').splitlines() if line.startswith(prefix)]
