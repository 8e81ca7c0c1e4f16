"""Templates sealed at rest (L-10): they open only on their own row, under their own key."""

from __future__ import annotations

import pytest

from services.policy.vault import Vault, VaultError

KEY = bytes(range(32))
ROW = {"kind": "face", "person": "001", "slot": 1}


def test_l10_a_sealed_template_opens_to_itself_and_does_not_show_it():
    template = b"\x01\x02embedding" * 20
    sealed = Vault(KEY).seal(template, **ROW)
    assert template not in sealed and b"embedding" not in sealed
    assert Vault(KEY).open(sealed, **ROW) == template
    assert Vault(KEY).seal(template, **ROW) != sealed  # a fresh nonce each time


@pytest.mark.parametrize("moved", [{"person": "002"}, {"slot": 2}, {"kind": "fingerprint"}])
def test_l10_a_template_moved_to_another_row_does_not_open(moved):
    sealed = Vault(KEY).seal(b"t" * 64, **ROW)
    with pytest.raises(VaultError):
        Vault(KEY).open(sealed, **{**ROW, **moved})


def test_l10_a_flipped_bit_or_another_key_does_not_open():
    sealed = bytearray(Vault(KEY).seal(b"t" * 64, **ROW))
    sealed[20] ^= 1
    with pytest.raises(VaultError):
        Vault(KEY).open(bytes(sealed), **ROW)
    with pytest.raises(VaultError):
        Vault(bytes(32)).open(Vault(KEY).seal(b"t", **ROW), **ROW)
