"""Over serial: the REPL, the WLAN slots and lws.json."""
import pytest

from lwstool import configure


def test_repl_answers(board):
    platform, sys_mpy, version = board.info()
    assert sys_mpy & 0xFF >= 6
    assert board.eval("1+2") == 3


def test_firmware_is_deployed(board):
    assert board.call("import lws", "lws.__version__")


def test_config_round_trip(board):
    old = configure.config_read(conn=board)
    try:
        configure.config_set("lwstool_test.value", 42, conn=board)
        assert configure.config_get("lwstool_test.value", conn=board) == 42
    finally:
        configure.config_push_data(old, conn=board)
    assert configure.config_read(conn=board) == old


def test_wifi_slots_keep_passwords(board):
    try:
        slot = configure.wifi_add("lwstool-test", "password-xyz", conn=board)
    except Exception as e:
        if "slots are in use" in str(e):
            pytest.skip("every WLAN slot is in use")
        raise
    try:
        rows = configure.wifi_list(conn=board)
        assert {"slot": slot, "ssid": "lwstool-test"}.items() <= \
            [r for r in rows if r["ssid"] == "lwstool-test"][0].items()
        assert "password-xyz" not in repr(rows)
    finally:
        assert configure.wifi_remove("lwstool-test", conn=board)
    assert "lwstool-test" not in [r["ssid"] for r in
                                  configure.wifi_list(conn=board)]


def test_wlan_connects_to_saved_network(target, board):
    """vboard only: the fake access point, saved in a slot, is joined by
    main.py after a reset."""
    if target.kind != "vboard":
        pytest.skip("needs the simulated network's access point")
    ap = target.fake_ap
    configure.wifi_add(ap["ssid"], ap["password"], conn=board)
    board.close()
    try:
        target.reset()
        target.wait_serving(30)
        st = configure.wifi_status(port=target.port)
        assert st.get("connected"), st
        assert st.get("ssid") == ap["ssid"]
    finally:
        configure.wifi_remove(ap["ssid"], port=target.port)
