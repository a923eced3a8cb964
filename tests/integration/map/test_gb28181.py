"""GB/T 28181 registration records: a platform's Catalog answer (two bodies, GB2312 and UTF-8)
imported into the map's camera register: cameras stored with the platform's status, other
device types left out and counted, items without a position or with a malformed code refused
by number and reason; a second catalogue updates the status, and the camera API shows it."""

from __future__ import annotations

import uuid

import psycopg

from spatial import cameras
from spatial.gb28181 import import_catalog


def _item(code: str, name: str, status: str = "ON", lon: str = "116.6123",
          lat: str = "34.0871") -> str:  # a spot of the test county no other test uses
    return (f"<Item><DeviceID>{code}</DeviceID><Name>{name}</Name><Manufacturer>Hikvision"
            f"</Manufacturer><Model>DS-2CD</Model><Owner>0</Owner><CivilCode>340621</CivilCode>"
            f"<Address>濉溪县</Address><Parental>0</Parental><ParentID>34062100002160000001"
            f"</ParentID><SafetyWay>0</SafetyWay><RegisterWay>1</RegisterWay><Secrecy>0"
            f"</Secrecy><Status>{status}</Status><Longitude>{lon}</Longitude>"
            f"<Latitude>{lat}</Latitude></Item>")


def _body(items: list[str], encoding: str) -> bytes:
    return (f'<?xml version="1.0" encoding="{encoding}"?>\r\n<Response><CmdType>Catalog'
            f"</CmdType><SN>17</SN><DeviceID>34062100002000000001</DeviceID><SumNum>5</SumNum>"
            f'<DeviceList Num="{len(items)}">{"".join(items)}</DeviceList></Response>\r\n'
            ).encode("gb2312" if encoding == "GB2312" else "utf-8")


async def test_catalogue_cameras_reach_the_register_with_their_status(database_url) -> None:
    serial = f"{uuid.uuid4().int % 10**6:06d}"
    ipc, cam, nvr = (f"340621000{kind}0{serial}" for kind in ("0132", "0131", "0118"))
    catalogue = _body([_item(ipc, "县府路口东 球机"), _item(cam, "无位置", lon="0", lat="0")],
                      "GB2312") + _body(
        [_item(nvr, "NVR"), _item("12345", "坏编码"),
         _item("34062100002160000001", "虚拟组织")], "UTF-8")
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = import_catalog(conn, catalogue, department=None, layer="t-gb", crs="WGS84")
    assert report["stored"] == 1
    assert report["left_out"] == {"type 118": 1, "type 216": 1}
    assert [r["row"] for r in report["refused"]] == [2, 4]
    assert "not numbers" in report["refused"][0]["reason"]
    assert "not a 20-digit GB/T 28181 code" in report["refused"][1]["reason"]

    with psycopg.connect(database_url, autocommit=True) as conn:
        name, code, attributes = conn.execute(
            "SELECT name, code, attributes FROM facilities WHERE id = %s", (ipc,)).fetchone()
        assert (name, code) == ("县府路口东 球机", ipc)
        assert {"source": "gb28181", "type": "ip_camera", "status": "ON",
                "manufacturer": "Hikvision", "civil_code": "340621"}.items() <= attributes.items()
        import_catalog(conn, _body([_item(ipc, "县府路口东 球机", status="OFF")], "UTF-8"),
                       department=None, layer="t-gb", crs="WGS84")
    async with await psycopg.AsyncConnection.connect(database_url) as aconn:
        found = await cameras.resolve(aconn, ipc)
        await aconn.execute("DELETE FROM facilities WHERE id = %s", (ipc,))
        await aconn.commit()  # nearest-camera tests elsewhere must not find it
    assert (found["name"], found["platform_status"]) == ("县府路口东 球机", "OFF")
