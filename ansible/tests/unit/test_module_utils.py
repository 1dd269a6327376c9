# Unit tests of plugins/module_utils/rdctl.py (run by ansible/collection_test.go with python3).
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'plugins', 'module_utils'))
import rdctl  # noqa: E402


class DiffFromReport(unittest.TestCase):
    def test_only_changed_steps_with_their_before_and_after(self):
        report = {'changed': True, 'steps': [
            {'action': 'write', 'target': '/etc/systemd/system/hbbs.service', 'changed': False},
            {'action': 'rotate the key in', 'target': '/var/lib/rustdesk',
             'before': 'SHA256:old', 'after': 'a new key', 'changed': True},
            {'action': 'create directory', 'target': '/var/lib/rustdesk', 'changed': True},
        ]}
        d = rdctl.diff_from_report(report)
        self.assertEqual(d['before'], 'rotate the key in /var/lib/rustdesk: SHA256:old\n'
                                      'create directory /var/lib/rustdesk: (as it is)\n')
        self.assertEqual(d['after'], 'rotate the key in /var/lib/rustdesk: a new key\n'
                                     'create directory /var/lib/rustdesk: (changed)\n')

    def test_nothing_changed_is_an_empty_diff(self):
        d = rdctl.diff_from_report({'changed': False, 'steps': [{'action': 'write', 'target': 'x', 'changed': False}]})
        self.assertEqual((d['before'], d['after']), ('', ''))
        d = rdctl.diff_from_report(None)
        self.assertEqual((d['before'], d['after']), ('', ''))

    def test_only_the_report_fields_are_copied(self):
        # A field the diff does not know (whatever rdctl adds later) never reaches it.
        d = rdctl.diff_from_report({'steps': [{'action': 'a', 'target': 't', 'changed': True, 'extra': 'XYZ'}]})
        self.assertNotIn('XYZ', d['before'] + d['after'])


class ErrorMessage(unittest.TestCase):
    def test_rdctl_error_and_hint_lines(self):
        err = 'noise\nrdctl: error: no deployment record\nrdctl: hint: run rdctl install\n'
        self.assertEqual(rdctl.error_message(1, err, 'rdctl rotate'),
                         'rdctl rotate failed (exit 1): rdctl: error: no deployment record; rdctl: hint: run rdctl install')

    def test_other_stderr_last_lines(self):
        self.assertEqual(rdctl.error_message(2, 'a\nb\n', 'x'), 'x failed (exit 2): a; b')
        self.assertEqual(rdctl.error_message(3, '', 'x'), 'x failed (exit 3): no message')


class RdctlWarnings(unittest.TestCase):
    def test_port_rules_left_with_the_commands(self):
        err = ("rdctl: warning: firewalld's default zone still admits rdctl's ports by port rules "
               "(21115-21117/tcp 21118-21119/tcp); rdctl leaves port rules alone (rdctl before rdctl-rustdesk "
               "added its rules so, and so do guides and admins); if nothing else needs them: firewall-cmd "
               "--permanent --remove-port=21115-21117/tcp --remove-port=21118-21119/tcp && firewall-cmd --reload\n")
        w = rdctl.rdctl_warnings(err)
        self.assertEqual(len(w), 1)
        self.assertTrue(w[0].startswith("firewalld's default zone still admits rdctl's ports by port rules"))
        self.assertTrue(w[0].endswith("if nothing else needs them: firewall-cmd --permanent "
                                      "--remove-port=21115-21117/tcp --remove-port=21118-21119/tcp && firewall-cmd --reload"))

    def test_others_rules(self):
        w = rdctl.rdctl_warnings('ran ufw allow 21115:21119/tcp\nrdctl: warning: kept ufw allow 21116/udp: a rule rdctl '
                                 'did not add admits the same; rdctl firewall --remove leaves it\n')
        self.assertEqual(w, ['kept ufw allow 21116/udp: a rule rdctl did not add admits the same; '
                             'rdctl firewall --remove leaves it'])

    def test_nothing_kept(self):
        self.assertEqual(rdctl.rdctl_warnings('rdctl: hint: run them with: rdctl firewall --apply\n'), [])
        self.assertEqual(rdctl.rdctl_warnings(None), [])
        self.assertEqual(rdctl.rdctl_warnings(''), [])


if __name__ == '__main__':
    unittest.main()
