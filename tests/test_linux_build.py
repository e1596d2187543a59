"""The Linux guests' build machinery without booting anything: the initramfs's cpio bytes, the check that
olddefconfig kept the fragments, the cache key, and the kernel command line."""

from __future__ import annotations

import shutil

import pytest
from linuxlib import linux_builder


def test_cpio_newc_bytes():
    """A device node and a symlink, byte for byte as buffer-format.rst describes them, then the trailer."""
    cpio_newc = linux_builder().cpio_newc
    data = cpio_newc.archive([cpio_newc.char_device("dev/console", 5, 1), cpio_newc.symlink("bin/sh", "busybox")])
    console = (b"070701" + b"00000001" + b"00002180" + b"00000000" * 2 + b"00000001" + b"00000000" * 2
               + b"00000000" * 2 + b"00000005" + b"00000001" + b"0000000C" + b"00000000"
               + b"dev/console\0" + b"\0" * 2)
    assert len(console) == 124   # 110-byte header + 12-byte name, padded to a multiple of 4
    sh = (b"070701" + b"00000002" + b"0000A1FF" + b"00000000" * 2 + b"00000001" + b"00000000" + b"00000007"
          + b"00000000" * 4 + b"00000007" + b"00000000" + b"bin/sh\0" + b"\0" * 3 + b"busybox" + b"\0")
    trailer = (b"070701" + b"00000000" * 4 + b"00000001" + b"00000000" * 6 + b"0000000B" + b"00000000"
               + b"TRAILER!!!\0" + b"\0" * 3)
    assert data == console + sh + trailer


def test_cpio_refuses_duplicates():
    cpio_newc = linux_builder().cpio_newc
    with pytest.raises(ValueError):
        cpio_newc.archive([cpio_newc.directory("bin"), cpio_newc.directory("bin")])


def test_config_mismatches_names_dropped_settings(tmp_path):
    kb = linux_builder()
    fragment = tmp_path / "a.config"
    fragment.write_text("# comment\nCONFIG_SMP=y\nCONFIG_FOO=n\nCONFIG_NR_CPUS=8\nCONFIG_BAR=y\n")
    config = tmp_path / ".config"
    config.write_text("CONFIG_SMP=y\n# CONFIG_FOO is not set\nCONFIG_NR_CPUS=4\n")
    assert kb.ARCHES == ["x86_64", "aarch64", "riscv64"]
    assert kb.kernel_build.config_mismatches(config, [fragment]) == [
        "CONFIG_NR_CPUS=8 (got 4)", "CONFIG_BAR=y (got n)"]


def test_build_key_follows_the_fragments(tmp_path, monkeypatch):
    """Changing a config fragment changes the cache key, so the kernel is rebuilt; the same inputs give the same."""
    kernel_build = linux_builder().kernel_build
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    before = kernel_build.build_key("x86_64", "6.12.1-1")
    assert kernel_build.build_key("x86_64", "6.12.1-1") == before
    assert kernel_build.build_key("x86_64", "6.12.2-1") != before
    copy = tmp_path / "config"
    shutil.copytree(kernel_build.CONFIG_DIR, copy)
    monkeypatch.setattr(kernel_build, "CONFIG_DIR", copy)
    assert kernel_build.build_key("x86_64", "6.12.1-1") == before
    with open(copy / "x86_64.config", "a") as f:
        f.write("CONFIG_PRINTK_TIME=y\n")
    assert kernel_build.build_key("x86_64", "6.12.1-1") != before


def test_kernel_command_line():
    lb = linux_builder()
    assert lb.kernel_command_line("aarch64", "falseshare", ("5",)) == \
        "console=ttyAMA0 nokaslr panic=-1 quiet memtap.run=falseshare memtap.args=5"
    assert lb.kernel_command_line("riscv64") == "console=ttyS0 nokaslr panic=-1 quiet"
    with pytest.raises(lb.LinuxBuildError):
        lb.kernel_command_line("x86_64", "falseshare", ("a b",))
