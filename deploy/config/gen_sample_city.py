#!/usr/bin/env python3
"""Generates deploy/config/sample-city.yaml: the demo city "Jinhe City (金河市)".

    python3 deploy/config/gen_sample_city.py           # build, validate, write, re-read, summary
    python3 deploy/config/gen_sample_city.py --check   # re-read the file on disk, validate it,
                                                       # compare with a fresh build, summary

Python 3 standard library only; deterministic (fixed random seed), so rerunning gives the same
bytes. The schema is protos/casebus/v1/config.proto; the domain facts (category trees, codes,
grid codes, time limits) are in DOMAIN.md §2-§3. Every rule stated in config.proto is checked
here before the file is written (validate()), including route ambiguity, which is checked by
routing every (subcategory, condition, community, source, urgency) combination.
"""

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import sys

SEED = 20250101
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "sample-city.yaml")

# ----------------------------------------------------------------------------------------------
# Enum spellings (lower-case value names of config.proto / case.proto enums).
CLOCKS = {"urgent_hours", "working_hours", "working_days", "calendar_days"}
KINDS = {"component", "event", "topic"}
SOURCES = ["inspector", "hotline", "app", "sensor", "open311", "superior"]
URGENCIES = ["normal", "urgent"]

# ----------------------------------------------------------------------------------------------
# Calendar: 2025 and 2026 State Council holiday schedules.
# (year, festival, first day off, last day off, make-up working days 调休)
FESTIVALS = [
    (2025, "元旦 New Year's Day", "2025-01-01", "2025-01-01", []),
    (2025, "春节 Spring Festival", "2025-01-28", "2025-02-04", ["2025-01-26", "2025-02-08"]),
    (2025, "清明节 Qingming", "2025-04-04", "2025-04-06", []),
    (2025, "劳动节 Labour Day", "2025-05-01", "2025-05-05", ["2025-04-27"]),
    (2025, "端午节 Dragon Boat Festival", "2025-05-31", "2025-06-02", []),
    (2025, "国庆节、中秋节 National Day + Mid-Autumn", "2025-10-01", "2025-10-08",
     ["2025-09-28", "2025-10-11"]),
    (2026, "元旦 New Year's Day", "2026-01-01", "2026-01-03", ["2026-01-04"]),
    (2026, "春节 Spring Festival", "2026-02-15", "2026-02-23", ["2026-02-14", "2026-02-28"]),
    (2026, "清明节 Qingming", "2026-04-04", "2026-04-06", []),
    (2026, "劳动节 Labour Day", "2026-05-01", "2026-05-05", ["2026-05-09"]),
    (2026, "端午节 Dragon Boat Festival", "2026-06-19", "2026-06-21", []),
    (2026, "中秋节 Mid-Autumn Festival", "2026-09-25", "2026-09-27", []),
    (2026, "国庆节 National Day", "2026-10-01", "2026-10-07", ["2026-09-20", "2026-10-10"]),
]
WORK_WEEKDAYS = [1, 2, 3, 4, 5]
WINDOWS = [("08:30", "12:00"), ("13:30", "17:30")]


def day(s):
    return dt.date.fromisoformat(s)


def festival_days(first, last):
    d, end = day(first), day(last)
    while d <= end:
        yield d
        d += dt.timedelta(days=1)


def build_calendar():
    """Returns (calendar dict, per-festival [(comment, holidays, make_up)] for the emitter)."""
    groups = []
    holidays, make_up = [], []
    for year, name, first, last, makeups in FESTIVALS:
        off = [d.isoformat() for d in festival_days(first, last)
               if d.isoweekday() in WORK_WEEKDAYS]
        span = first if first == last else f"{first} .. {last}"
        groups.append((f"{year} {name}: off {span}", off, list(makeups)))
        holidays += off
        make_up += makeups
    cal = {
        "time_zone": "Asia/Shanghai",
        "utc_offset_minutes": 480,
        "windows": [{"start": s, "end": e} for s, e in WINDOWS],
        "work_weekdays": list(WORK_WEEKDAYS),
        "holidays": holidays,
        "make_up_days": sorted(make_up),
    }
    return cal, groups


# ----------------------------------------------------------------------------------------------
# Geography. Four districts laid out 2 x 2 around (30.27, 120.15); each district holds 2 x 2
# streets, each street 2 x 2 community slots (one slot may be a park/lake: no community), each
# community 4 x 3 cells of 100 m (a few cells are water or rail land: no grid). Grids are
# numbered west->east, north->south inside their community (DOMAIN.md §2 "Unit grid").

CENTER_LAT, CENTER_LON = 30.27, 120.15
CELL_M = 100.0
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(CENTER_LAT))
DLAT = CELL_M / M_PER_DEG_LAT
DLON = CELL_M / M_PER_DEG_LON
COMM_COLS, COMM_ROWS = 4, 3            # cells per community
STREET_COLS, STREET_ROWS = 2, 2        # community slots per street
DIST_COLS, DIST_ROWS = 2, 2            # street slots per district
CITY_COLS, CITY_ROWS = 2, 2            # districts
CELLS_X = COMM_COLS * STREET_COLS * DIST_COLS * CITY_COLS   # 32 cells = 3.2 km west-east
CELLS_Y = COMM_ROWS * STREET_ROWS * DIST_ROWS * CITY_ROWS   # 24 cells = 2.4 km north-south
NORTH = CENTER_LAT + CELLS_Y / 2 * DLAT
WEST = CENTER_LON - CELLS_X / 2 * DLON
JITTER_M = 8.0   # centroids are not on a perfect lattice; neighbours stay 84..116 m apart

DISTRICTS = [  # code, name, English, streets (name, English)
    ("330102", "鼓楼区", "Gulou District (old town, north-west)",
     [("鼓楼街道", "Gulou"), ("南门街道", "Nanmen"), ("文庙街道", "Wenmiao"), ("金河街道", "Jinhe")]),
    ("330103", "临江区", "Linjiang District (riverside, north-east)",
     [("临江街道", "Linjiang"), ("望江街道", "Wangjiang"), ("码头街道", "Matou"), ("江滨街道", "Jiangbin")]),
    ("330104", "湖西区", "Huxi District (lakeside, south-west)",
     [("湖西街道", "Huxi"), ("翠湖街道", "Cuihu"), ("梅岭街道", "Meiling"), ("柳塘街道", "Liutang")]),
    ("330105", "新城区", "Xincheng District (new town, south-east)",
     [("新城街道", "Xincheng"), ("高新街道", "Gaoxin"), ("科创街道", "Kechuang"), ("青禾街道", "Qinghe")]),
]
COMMUNITY_NAMES = (
    "长寿 平安 和平 锦绣 桂花 梧桐 丰乐 春晖 映月 紫荆 福缘 安康 银杏 清泰 望湖 明珠 "
    "朝晖 德胜 香樟 翠苑 嘉禾 景芳 湖墅 紫阳 凤起 柳营 东坡 涌金 采荷 红梅 兴隆 松木 "
    "古荡 文新 益乐 雅苑 金沙 玉泉 白堤 茶花 芙蓉 海棠 新民 仁和 永宁 广福 双桥 三塘 "
    "五星 七贤 九莲 南星 北山 江城 水澄 钱塘 星光 云栖 晨曦 阳光 和睦 友谊 青园 碧桂"
).split()
# The old-town scenic zone: a street with its own management committee (street-level routes).
SCENIC_STREET = "330102003"
# A public-rental-housing community run by the city housing bureau (community-level route).
PUBLIC_RENTAL_COMMUNITY = "330104002002"


def build_geography(rng):
    districts, streets, communities, grids = [], [], [], []
    bounds = {}
    names = iter(COMMUNITY_NAMES)
    for di, (dcode, dname, den, street_names) in enumerate(DISTRICTS):
        districts.append({"code": dcode, "name": dname, "_en": den})
        drow, dcol = divmod(di, CITY_COLS)
        x0 = dcol * DIST_COLS * STREET_COLS * COMM_COLS
        y0 = drow * DIST_ROWS * STREET_ROWS * COMM_ROWS
        x1 = x0 + DIST_COLS * STREET_COLS * COMM_COLS
        y1 = y0 + DIST_ROWS * STREET_ROWS * COMM_ROWS
        bounds[dcode] = (NORTH - y1 * DLAT, NORTH - y0 * DLAT, WEST + x0 * DLON, WEST + x1 * DLON)
        for si, (sname, sen) in enumerate(street_names):
            scode = f"{dcode}{si + 1:03d}"
            streets.append({"code": scode, "name": sname, "_en": f"{sen} Subdistrict"})
            srow, scol = divmod(si, DIST_COLS)
            slots = list(range(STREET_COLS * STREET_ROWS))
            # One street in three has a park or lake in one community slot.
            if rng.random() < 0.35 and scode != SCENIC_STREET:
                slots.remove(rng.choice(slots))
            for cseq, slot in enumerate(slots, start=1):
                ccode = f"{scode}{cseq:03d}"
                cname = next(names) + "社区"
                communities.append({"code": ccode, "name": cname})
                crow, ccol = divmod(slot, STREET_COLS)
                cells = [(r, c) for r in range(COMM_ROWS) for c in range(COMM_COLS)]
                for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
                    cells.remove(rng.choice(cells))
                for gseq, (r, c) in enumerate(cells, start=1):  # north->south, west->east
                    gx = x0 + scol * STREET_COLS * COMM_COLS + ccol * COMM_COLS + c
                    gy = y0 + srow * STREET_ROWS * COMM_ROWS + crow * COMM_ROWS + r
                    jx = rng.uniform(-JITTER_M, JITTER_M) / M_PER_DEG_LON
                    jy = rng.uniform(-JITTER_M, JITTER_M) / M_PER_DEG_LAT
                    lat = round(NORTH - (gy + 0.5) * DLAT + jy, 6)
                    lon = round(WEST + (gx + 0.5) * DLON + jx, 6)
                    grids.append({"code": f"{ccode}{gseq:03d}", "lat": lat, "lon": lon})
    return districts, streets, communities, grids, bounds


# ----------------------------------------------------------------------------------------------
# Departments. Every one gets a spool adapter under spool/<id>.

DIST_SHORT = {"330102": "鼓楼", "330103": "临江", "330104": "湖西", "330105": "新城"}


def build_departments():
    deps = []

    def dep(did, name, en, parent=None):
        d = {"id": did, "name": name}
        if parent:
            d["parent"] = parent
        d["adapter"] = {"spool": {"directory": f"spool/{did}"}}
        d["_en"] = en
        deps.append(d)

    for dcode, short in DIST_SHORT.items():
        dep(f"command-{dcode}", f"{short}区城市运行管理服务中心",
            f"{short} district command centre (2nd-level dispatch; catch-all)")
    for dcode, short in DIST_SHORT.items():
        dep(f"enforce-{dcode}", f"{short}区综合行政执法局", f"{short} urban-management enforcement team")
    dep("sanitation", "金河市环境卫生管理中心", "city sanitation centre")
    for dcode, short in DIST_SHORT.items():
        dep(f"sanitation-{dcode}", f"{short}区环境卫生管理所", f"{short} sanitation office", "sanitation")
    for dcode, short in DIST_SHORT.items():
        dep(f"property-{dcode}", f"{short}区住建局物业管理办公室", f"{short} property-management office")
    dep("traffic-police", "金河市公安局交通警察支队", "traffic police detachment")
    for dcode, short in DIST_SHORT.items():
        dep(f"traffic-police-{dcode}", f"交警支队{short}大队", f"traffic police {short} brigade",
            "traffic-police")
    dep("public-security", "金河市公安局", "public security bureau")
    dep("fire-rescue", "金河市消防救援支队", "fire and rescue detachment")
    dep("emergency-management", "金河市应急管理局", "emergency management bureau")
    dep("housing", "金河市住房和城乡建设局", "housing and urban-rural construction bureau")
    dep("market-regulation", "金河市市场监督管理局", "market regulation bureau")
    dep("ecology-environment", "金河市生态环境局", "ecology and environment bureau")
    dep("transport", "金河市交通运输局", "transport bureau")
    dep("municipal-facilities", "金河市市政设施管理中心", "roads, bridges and municipal facilities")
    dep("street-lighting", "金河市路灯管理所", "street lighting office")
    dep("landscaping", "金河市园林绿化管理中心", "landscaping centre")
    dep("landscaping-emergency", "园林绿化应急抢险队", "landscaping emergency crew", "landscaping")
    dep("river-management", "金河市河道管理处", "rivers and waterways office")
    dep("drainage", "金河市排水有限公司", "drainage company")
    dep("water-supply", "金河水务集团供水分公司", "water supply company")
    dep("gas", "金河燃气集团有限公司", "gas company")
    dep("power-supply", "国网金河供电公司", "State Grid Jinhe power supply company")
    dep("telecom-ct", "中国电信金河分公司", "China Telecom Jinhe branch")
    dep("telecom-cmcc", "中国移动金河分公司", "China Mobile Jinhe branch")
    dep("cable-tv", "金河广电网络有限公司", "cable TV network company")
    dep("post", "中国邮政金河分公司", "China Post Jinhe branch")
    dep("civil-air-defense", "金河市人民防空办公室", "civil air defence office")
    dep("scenic-wenmiao", "文庙历史文化街区管理委员会", "Wenmiao historic-quarter management committee")
    dep("city-leadership", "金河市城市管理委员会办公室", "city leadership office (督办 escalations)")
    return deps


# ----------------------------------------------------------------------------------------------
# Escalation: the ladder of DOMAIN.md §4 (reminder 50 %, yellow 80 %, red 100 %, 督办 200 %),
# each district's command centre for 签收超时 and red, city leadership for 督办.
def build_escalation():
    step = lambda sid, frac, target, light=None, supervision=False: dict(
        {"id": sid, "fraction": frac, "target": target},
        **({"light": light} if light else {}), **({"supervision": True} if supervision else {}))
    return {
        "ladder": {
            "accept": [step("reminder", 0.5, "responsible_department"),
                       step("accept-overdue", 1.0, "district_center", "yellow")],
            "handle": [step("reminder", 0.5, "responsible_department"),
                       step("yellow", 0.8, "responsible_department", "yellow"),
                       step("red", 1.0, "district_center", "red"),
                       step("supervise", 2.0, "leadership", "red", True)],
            "verify": [step("verify-overdue", 1.0, "district_center")],
        },
        "district_centers": [{"district": d, "department": f"command-{d}"} for d in DIST_SHORT],
        "leadership": "city-leadership",
    }


# ----------------------------------------------------------------------------------------------
# Categories. Codes: component class "10"+cc, subcategory "10"+cc+ss (cc ss as in the CJ/T 214
# lineage of DOMAIN.md §2); event class "20"+cc; 12345 topic class "30"+cc.

def tl(spec):
    """'0.5uh' -> {'value': 0.5, 'clock': 'urgent_hours'}; uh/wh/wd/cd."""
    m = re.fullmatch(r"([0-9.]+)(uh|wh|wd|cd)", spec)
    num = float(m.group(1))
    value = int(num) if num.is_integer() else num
    clock = {"uh": "urgent_hours", "wh": "working_hours", "wd": "working_days",
             "cd": "calendar_days"}[m.group(2)]
    return {"value": value, "clock": clock}


def lim(accept=None, handle=None, verify=None, rework=None):
    out = {}
    for k, v in (("accept", accept), ("handle", handle), ("verify", verify), ("rework", rework)):
        if v:
            out[k] = tl(v)
    return out


# Typical limit sets.
COVER = lim("0.5uh", "2uh", "2uh", rework="1uh")      # well covers: reach the site within 2 h
URGENT_EVT = dict(accept="0.5uh", verify="2uh")
COMP = dict(accept="1wh", verify="2wh")               # ordinary component repairs
EVT = dict(accept="1wh", verify="2wh")
TOPIC = dict(accept="1wd", verify="1wd")              # 12345: sign within 1 WD, 回访 within 1 WD


def cond(cid, name, closing, **limits):
    c = {"id": cid, "name": name, "limits": lim(**limits)}
    if closing:
        c["closing"] = closing
    return c


# (class code, class name, English, kind, [(sub code, name, English, limits, conditions)])
CATEGORY_TREE = [
    ("1001", "公用设施", "public facilities", "component", [
        ("100101", "上水井盖", "water-supply well cover", COVER, None),
        ("100102", "污水井盖", "sewage well cover", COVER, None),
        ("100103", "雨水井盖", "storm-water well cover", COVER, None),
        ("100104", "雨水箅子", "storm-drain grate", COVER, None),
        ("100105", "电力井盖", "power well cover", COVER, None),
        ("100106", "路灯井盖", "street-lighting well cover", COVER, None),
        ("100107", "电信井盖", "telecom well cover", COVER, None),
        ("100108", "有线电视井盖", "cable-TV well cover", COVER, None),
        ("100109", "网络井盖", "network (mobile carrier) well cover", COVER, None),
        # 0110 热力井盖 left out: no district heating in a city south of the Huai river.
        ("100111", "燃气井盖", "gas well cover", COVER, None),
        ("100112", "公安井盖", "police (signal/CCTV) well cover", COVER, None),
        ("100113", "消防设施", "fire hydrant and fire facilities", lim("1wh", "1wd", "2wh"), None),
        ("100114", "不明井盖", "well cover of unknown owner", COVER, None),
        ("100115", "电信交接箱", "telecom cross-connect cabinet", lim("1wh", "3wd", "2wh"), None),
        ("100116", "电力设施", "power facility (box transformer, cabinet)", lim("0.5uh", "4uh", "2wh"), None),
        ("100117", "电杆", "utility pole", lim("1wh", "2wd", "2wh"), None),
        ("100118", "路灯", "street lamp", lim("1wh", "2wd", "2wh"), [
            cond("section-out", "整段路灯不亮", "整段路灯恢复照明", handle="4uh"),
            cond("single-out", "单灯不亮或灯具损坏", "灯具修复，夜间亮灯", handle="2wd"),
            cond("pole-damaged", "灯杆倾斜、破损或线缆外露", "灯杆扶正或更换，无安全隐患",
                 accept="0.5uh", handle="4uh"),
        ]),
        ("100121", "报刊亭", "newspaper kiosk", lim("1wh", "3wd", "2wh"), None),
        ("100122", "电话亭", "telephone booth", lim("1wh", "3wd", "2wh"), None),
        ("100123", "邮筒", "post box", lim("1wh", "3wd", "2wh"), None),
        ("100126", "健身设施", "outdoor fitness equipment", lim("1wh", "3wd", "2wh"), None),
        ("100127", "中水井盖", "reclaimed-water well cover", COVER, None),
    ]),
    ("1002", "道路交通", "roads and traffic", "component", [
        ("100201", "停车场", "car park", lim("1wh", "5wd", "4wh"), None),
        ("100202", "停车咪表", "parking meter", lim("1wh", "2wd", "2wh"), None),
        ("100203", "公交站亭", "bus shelter", lim("1wh", "2wd", "2wh"), None),
        ("100204", "出租车站牌", "taxi stand sign", lim("1wh", "3wd", "2wh"), None),
        ("100205", "过街天桥", "pedestrian overpass", lim("1wh", "2wd", "4wh"), None),
        ("100206", "地下通道", "pedestrian underpass", lim("1wh", "2wd", "4wh"), None),
        ("100207", "高架立交桥", "elevated road / interchange", lim("1wh", "2wd", "4wh"), None),
        ("100208", "跨河桥", "river bridge", lim("1wh", "2wd", "4wh"), None),
        ("100209", "交通标志牌", "traffic sign", lim("1wh", "2wd", "2wh"), None),
        ("100210", "交通控制箱", "traffic control cabinet", lim("1wh", "1wd", "2wh"), None),
        ("100211", "交通护栏", "traffic guard rail", lim("1wh", "1wd", "2wh"), None),
        ("100212", "存车支架", "bicycle rack", lim("1wh", "3wd", "2wh"), None),
        ("100213", "路名牌", "street-name sign", lim("1wh", "5wd", "2wh"), None),
        ("100214", "交通信号灯", "traffic signal", lim("0.5uh", "4uh", "2uh"), None),
    ]),
    ("1003", "市容环境", "city appearance facilities", "component", [
        ("100301", "公共厕所", "public toilet", lim("1wh", "4wh", "2wh"), None),
        ("100302", "公厕化粪池", "public-toilet septic tank", lim("1wh", "4wh", "2wh"), None),
        ("100303", "公厕指示牌", "public-toilet sign", lim("1wh", "5wd", "2wh"), None),
        ("100304", "垃圾间", "refuse room", lim("1wh", "1wd", "2wh"), None),
        ("100305", "垃圾箱", "litter bin", lim("1wh", "1wd", "2wh"), None),
        ("100306", "灯箱霓虹灯", "light box / neon sign", lim("1wh", "3wd", "2wh"), None),
        ("100307", "广告牌匾", "shop sign / billboard", lim("1wh", "2wd", "2wh"), None),
    ]),
    ("1004", "园林绿化", "landscaping", "component", [
        ("100401", "古树名木", "heritage tree", lim("1wh", "1wd", "4wh"), None),
        ("100402", "行道树", "street tree", lim("1wh", "5wd", "2wh"), [
            cond("fallen", "倒伏或断枝阻碍通行", "树木扶正或清除，道路恢复通行",
                 accept="0.5uh", handle="2uh", verify="2uh"),
            cond("pruning", "遮挡信号灯、路灯或标志需修剪", "修剪到位，无遮挡", handle="5wd"),
            cond("dead", "枯死或缺株需补植", "补植完成", handle="10wd", verify="4wh"),
        ]),
        ("100403", "树池箅子", "tree-pit grate", lim("1wh", "3wd", "2wh"), None),
        ("100404", "花架花钵", "flower stand / planter", lim("1wh", "3wd", "2wh"), None),
        ("100405", "绿地", "green space (maintenance)", lim("1wh", "5wd", "4wh"), None),
        ("100406", "雕塑", "sculpture", lim("1wh", "5wd", "2wh"), None),
        ("100407", "街头座椅", "street bench", lim("1wh", "3wd", "2wh"), None),
        ("100409", "绿地维护设施", "green-space maintenance facilities", lim("1wh", "5wd", "2wh"), None),
    ]),
    ("1005", "房屋土地", "buildings and land", "component", [
        ("100501", "宣传栏", "notice board", lim("1wh", "5wd", "2wh"), None),
        ("100502", "人防工事", "civil air-defence works", lim("1wh", "5wd", "4wh"), None),
        ("100503", "公房地下室", "public-housing basement", lim("1wh", "5wd", "4wh"), None),
    ]),
    ("1006", "其他设施", "other facilities", "component", [
        ("100601", "监控电子眼", "CCTV camera", lim("1wh", "2wd", "2wh"), None),
        ("100602", "水域护栏", "waterside railing", lim("1wh", "1wd", "2wh"), None),
        ("100603", "防汛墙", "flood wall", lim("1wh", "2wd", "4wh"), None),
        ("100604", "公共自行车站点", "public bicycle station", lim("1wh", "2wd", "2wh"), None),
        ("100605", "电动汽车充电桩", "EV charging post", lim("1wh", "2wd", "2wh"), None),
    ]),
    ("2001", "市容环境", "city appearance", "event", [
        ("200101", "私搭乱建", "illegal construction (违法搭建)", lim("1wh", "4wh", "4wh"), [
            cond("stop-work", "在建违法建筑，责令停止施工", "现场已停止施工", handle="4wh"),
            cond("penalty", "已建成违法建筑，立案查处", "已作出行政处罚决定", handle="7wd"),
            cond("demolition", "限期拆除", "违法建筑已拆除，现场清理完毕", handle="20wd"),
        ]),
        ("200102", "暴露垃圾", "exposed garbage", lim("1wh", "4wh", "2wh", rework="2wh"), None),
        ("200103", "积存垃圾渣土", "accumulated garbage / muck", lim("1wh", "4wh", "2wh"), [
            cond("construction-waste", "建筑垃圾", "建筑垃圾清运完毕", handle="4wh"),
            cond("soil-heap", "渣土堆积", "渣土清运完毕，路面清洁", handle="2wd"),
        ]),
        ("200104", "道路不洁", "dirty road", lim("1wh", "2wh", "2wh", rework="1wh"), None),
        ("200105", "水域不洁", "dirty waterway", lim("1wh", "15wd", "4wh"), None),
        ("200106", "绿地脏乱", "littered green space", lim("1wh", "4wh", "2wh"), None),
        ("200107", "废弃车辆", "abandoned vehicle", lim("1wh", "5wd", "2wh"), None),
        ("200108", "废弃家具设备", "abandoned furniture / appliances", lim("1wh", "1wd", "2wh"), None),
        ("200109", "非装饰性树挂", "non-decorative things hung on trees", lim("1wh", "1wd", "2wh"), None),
        ("200110", "焚烧树叶垃圾", "burning leaves / rubbish", lim("0.5uh", "2uh", "2uh"), None),
        ("200111", "油烟污染", "cooking-fume pollution", lim("1wh", "5wd", "4wh"), None),
        ("200112", "擅自饲养家禽家畜", "unauthorised poultry / livestock", lim("1wh", "5wd", "2wh"), None),
        ("200113", "垃圾满溢", "overflowing bins", lim("1wh", "2wh", "2wh"), None),
    ]),
    ("2002", "宣传广告", "advertising", "event", [
        ("200201", "非法小广告", "illegal small ads", lim("1wh", "1wd", "2wh"), None),
        ("200202", "违章张贴悬挂广告牌匾", "unauthorised posters / signboards", lim("1wh", "5wd", "2wh"), None),
        ("200203", "占道广告牌", "sidewalk A-frame signs", lim("1wh", "4wh", "2wh"), None),
        ("200204", "街头散发广告", "leafleting", lim("1wh", "2wh", "2wh"), None),
        ("200205", "广告招牌破损", "damaged signboard", lim("0.5uh", "4uh", "2wh"), None),
    ]),
    ("2003", "施工管理", "construction management", "event", [
        ("200301", "施工扰民", "construction noise", lim("0.5uh", "2uh", "2uh"), None),
        ("200302", "工地扬尘", "site dust", lim("1wh", "4wh", "2wh"), None),
        ("200303", "道路遗撒", "spilled load on road", lim("1wh", "2wh", "2wh"), None),
        ("200304", "施工废弃料", "construction debris", lim("1wh", "1wd", "2wh"), None),
        ("200305", "施工占道", "road occupied by works", lim("1wh", "1wd", "2wh"), None),
        ("200306", "无证掘路", "unpermitted road excavation", lim("1wh", "4wh", "2wh"), None),
        ("200307", "渣土运输车辆未密闭", "uncovered muck truck", lim("1wh", "2wh", "2wh"), None),
    ]),
    ("2004", "突发事件", "emergencies", "event", [
        ("200401", "路面塌陷", "road collapse", lim(handle="4uh", **URGENT_EVT), None),
        ("200402", "自来水管破裂", "burst water main", lim(handle="4uh", **URGENT_EVT), None),
        ("200403", "燃气管道破裂", "gas pipe rupture", lim("0.25uh", "2uh", "2uh"), None),
        ("200404", "下水道堵塞或破损", "blocked or broken drain", lim(handle="4uh", **URGENT_EVT), [
            cond("overflow", "堵塞冒溢", "疏通完毕，无冒溢", handle="4uh"),
            cond("broken", "管道或检查井破损", "破损修复", handle="2wd", verify="4wh"),
        ]),
        ("200405", "道路积水", "waterlogged road", lim("1wh", "4wh", "2wh"), None),
        ("200406", "道路积雪结冰", "snow / ice on road", lim("0.5uh", "1cd", "2wh"), None),
        ("200407", "架空线缆损坏", "damaged overhead cable", lim(handle="4uh", **URGENT_EVT), None),
        ("200408", "群体性事件", "mass incident", lim("0.25uh", "2uh", "2uh"), None),
        ("200409", "火灾", "fire", lim("0.25uh", "1uh", "2uh"), None),
    ]),
    ("2005", "街面秩序", "street order", "event", [
        ("200501", "无照经营游商", "unlicensed street vendor", lim("1wh", "2wh", "2wh"), None),
        ("200502", "流浪乞讨", "vagrancy / begging", lim("1wh", "4wh", "2wh"), None),
        ("200503", "占道废品收购", "scrap collection on the sidewalk", lim("1wh", "4wh", "2wh"), None),
        ("200504", "乱堆物堆料", "goods / materials piled on the street", lim("1wh", "4wh", "2wh"), None),
        ("200505", "店外经营", "business spilling out of the shop", lim("1wh", "2wh", "2wh"), None),
        ("200506", "占道经营", "road-occupying stall", lim("1wh", "2wh", "2wh"), None),
        ("200507", "商业噪音", "commercial noise", lim("1wh", "2wh", "2wh"), None),
        ("200508", "黑车拉客", "unlicensed taxi touting", lim("1wh", "2wh", "2wh"), None),
        ("200509", "机动车乱停放", "illegal parking (motor vehicles)", lim("1wh", "2wh", "2wh"), None),
        ("200510", "非机动车乱停放", "illegal parking (bicycles, e-bikes)", lim("1wh", "4wh", "2wh"), None),
        ("200511", "露天烧烤", "open-air barbecue", lim("0.5uh", "2uh", "2uh"), None),
        ("200512", "沿街晾挂", "laundry hung along the street", lim("1wh", "4wh", "2wh"), None),
        ("200513", "空调室外机低挂", "air-conditioner unit hung too low", lim("1wh", "5wd", "2wh"), None),
        ("200514", "消防通道占用", "fire lane blocked", lim("0.5uh", "2uh", "2uh"), None),
        ("200599", "其他街面秩序问题", "other street-order problems", lim("1wh", "1wd", "2wh"), None),
    ]),
    ("2006", "其他事件", "other events", "event", [
        ("200601", "动物尸体", "animal carcass", lim("1wh", "4wh", "2wh"), None),
        ("200602", "路面破损", "damaged road surface", lim("1wh", "3wd", "4wh"), None),
        ("200699", "其他", "other", lim("1wh", "5wd", "2wh"), None),
    ]),
    ("3001", "物业管理", "12345: property management", "topic", [
        ("300101", "物业服务质量", "quality of property services", lim(handle="5wd", **TOPIC), None),
        ("300102", "物业收费", "property fees", lim(handle="5wd", **TOPIC), None),
        ("300103", "小区共用设施设备维修", "repair of shared facilities", lim(handle="5wd", **TOPIC), None),
        ("300104", "小区环境卫生与绿化", "compound cleanliness and greenery", lim(handle="5wd", **TOPIC), None),
        ("300105", "业主委员会与物业选聘", "owners' committee, choosing a manager", lim(handle="10wd", **TOPIC), None),
        ("300106", "小区停车管理", "parking inside the compound", lim(handle="5wd", **TOPIC), None),
        ("300107", "小区消防通道堵塞", "blocked fire lane inside a compound",
         lim("2uh", "1cd", "1wd"), None),
        ("300108", "住宅专项维修资金", "housing maintenance fund", lim(handle="10wd", **TOPIC), None),
    ]),
    ("3002", "住房", "12345: housing", "topic", [
        ("300201", "房屋质量与安全", "building quality and safety", lim(handle="5wd", **TOPIC), None),
        ("300202", "房产中介", "estate agents", lim(handle="5wd", **TOPIC), None),
        ("300203", "房屋租赁", "rentals", lim(handle="5wd", **TOPIC), None),
        ("300204", "保障性住房", "affordable housing", lim(handle="10wd", **TOPIC), None),
        ("300205", "老旧小区改造", "old-compound renovation", lim(handle="10wd", **TOPIC), None),
    ]),
    ("3003", "交通管理", "12345: traffic management", "topic", [
        ("300301", "停车难与停车收费", "parking shortage and fees", lim(handle="5wd", **TOPIC), None),
        ("300302", "违法停车", "illegal parking complaint", lim("1wd", "2wd", "1wd"), None),
        ("300303", "公交线路与站点", "bus routes and stops", lim(handle="5wd", **TOPIC), None),
        ("300304", "出租车与网约车", "taxis and ride-hailing", lim(handle="5wd", **TOPIC), None),
        ("300305", "交通信号与标志标线", "signals, signs and markings", lim(handle="5wd", **TOPIC), None),
    ]),
    ("3004", "市场管理", "12345: market regulation", "topic", [
        ("300401", "消费纠纷", "consumer disputes", lim(handle="5wd", **TOPIC), None),
        ("300402", "食品安全", "food safety", lim(handle="5wd", **TOPIC), None),
        ("300403", "价格收费", "prices and charges", lim(handle="5wd", **TOPIC), None),
        ("300404", "无证无照经营", "unlicensed business", lim(handle="5wd", **TOPIC), None),
        ("300405", "电梯困人", "people trapped in a lift", lim("0.25uh", "1uh", "1wd"), None),
    ]),
    ("3005", "公共服务", "12345: public utilities", "topic", [
        ("300501", "停水", "water outage", lim("1uh", "1cd", "1wd"), None),
        ("300502", "停电", "power outage", lim("1uh", "1cd", "1wd"), None),
        ("300503", "燃气故障", "gas fault or smell", lim("0.5uh", "2uh", "1wd"), None),
        ("300504", "通信与宽带", "telephone and broadband", lim(handle="5wd", **TOPIC), None),
        ("300505", "供水水质", "tap-water quality", lim("1wd", "3wd", "1wd"), None),
    ]),
    ("3006", "城乡建设与环境", "12345: construction and environment", "topic", [
        ("300601", "噪声扰民", "noise nuisance", lim(handle="5wd", **TOPIC), None),
        ("300602", "大气与异味污染", "air pollution and odours", lim(handle="5wd", **TOPIC), None),
        ("300603", "建筑施工投诉", "construction-site complaints", lim(handle="5wd", **TOPIC), None),
        ("300604", "河道水体污染", "river pollution", lim(handle="5wd", **TOPIC), None),
    ]),
]


def build_categories():
    cats = []
    for ccode, cname, cen, kind, subs in CATEGORY_TREE:
        cats.append({"code": ccode, "name": cname, "kind": kind, "_en": f"class: {cen}"})
        for scode, sname, sen, limits, conds in subs:
            c = {"code": scode, "name": sname, "kind": kind, "parent": ccode,
                 "limits": json.loads(json.dumps(limits)), "_en": sen}
            if conds:
                c["conditions"] = json.loads(json.dumps(conds))
            cats.append(c)
    return cats


# ----------------------------------------------------------------------------------------------
# Routes.

def build_routes():
    routes = []

    def r(rid, dept, cat="", place="", condition="", source="", urgency="", note=None):
        x = {"id": rid, "category_prefix": cat}
        if condition:
            x["condition"] = condition
        if place:
            x["place_prefix"] = place
        if source:
            x["source"] = source
        if urgency:
            x["urgency"] = urgency
        x["department"] = dept
        if note:
            x["_comment"] = note
        routes.append(x)

    dists = list(DIST_SHORT)
    # Catch-all: anything without a better rule goes to the district command centre, which
    # re-dispatches by hand (2-level dispatch).
    for i, d in enumerate(dists):
        r(f"r-default-{d}", f"command-{d}", "", d,
          note="Catch-all per district: the district command centre re-dispatches by hand."
          if i == 0 else None)

    # Components: by owner.
    city = [
        ("r-cover-water", "100101", "water-supply", "Component well covers go to their owners."),
        ("r-cover-sewage", "100102", "drainage", None),
        ("r-cover-storm", "100103", "drainage", None),
        ("r-grate-storm", "100104", "drainage", None),
        ("r-cover-power", "100105", "power-supply", None),
        ("r-cover-lighting", "100106", "street-lighting", None),
        ("r-cover-telecom", "100107", "telecom-ct", None),
        ("r-cover-cable", "100108", "cable-tv", None),
        ("r-cover-network", "100109", "telecom-cmcc", None),
        ("r-cover-gas", "100111", "gas", None),
        ("r-cover-police", "100112", "public-security", None),
        ("r-hydrant", "100113", "fire-rescue", None),
        ("r-cover-unknown", "100114", "municipal-facilities", None),
        ("r-telecom-cabinet", "100115", "telecom-ct", None),
        ("r-power-facility", "100116", "power-supply", None),
        ("r-pole", "100117", "power-supply", None),
        ("r-lamp", "100118", "street-lighting", None),
        ("r-phone-booth", "100122", "telecom-ct", None),
        ("r-postbox", "100123", "post", None),
        ("r-cover-reclaimed", "100127", "drainage", None),
        ("r-public-facility", "1001", "municipal-facilities", "Rest of 公用设施 (fitness equipment ...)."),
        ("r-road-traffic", "1002", "municipal-facilities", "道路交通: bridges, underpasses, name plates ..."),
        ("r-carpark", "100201", "transport", None),
        ("r-meter", "100202", "transport", None),
        ("r-bus-shelter", "100203", "transport", None),
        ("r-taxi-sign", "100204", "transport", None),
        ("r-traffic-sign", "100209", "traffic-police", None),
        ("r-traffic-cabinet", "100210", "traffic-police", None),
        ("r-guard-rail", "100211", "traffic-police", None),
        ("r-signal", "100214", "traffic-police", None),
        ("r-landscaping", "1004", "landscaping", "园林绿化."),
        ("r-buildings", "1005", "housing", "房屋土地."),
        ("r-air-defence", "100502", "civil-air-defense", None),
        ("r-other-facility", "1006", "municipal-facilities", "其他设施 (EV charging posts ...)."),
        ("r-cctv", "100601", "public-security", None),
        ("r-water-railing", "100602", "river-management", None),
        ("r-flood-wall", "100603", "river-management", None),
        ("r-bike-station", "100604", "transport", None),
    ]
    for rid, cat, dept, note in city:
        r(rid, dept, cat, note=note)
    r("r-tree-fallen", "landscaping-emergency", "100402", condition="fallen",
      note="A fallen tree blocking the road goes to the emergency crew.")
    for i, d in enumerate(dists):
        r(f"r-appearance-facility-{d}", f"sanitation-{d}", "1003", d,
          note="市容环境 components (toilets, bins) to the district sanitation office; "
               "signs and light boxes to enforcement; kiosks to enforcement." if i == 0 else None)
        r(f"r-lightbox-{d}", f"enforce-{d}", "100306", d)
        r(f"r-signboard-{d}", f"enforce-{d}", "100307", d)
        r(f"r-kiosk-{d}", f"enforce-{d}", "100121", d)

    # Events: by class to the district enforcement team; some subcategories elsewhere.
    for i, d in enumerate(dists):
        for cls, name in (("2001", "appearance"), ("2002", "ads"), ("2003", "construction"),
                          ("2005", "street-order")):
            r(f"r-{name}-{d}", f"enforce-{d}", cls, d,
              note="Event classes 市容环境, 宣传广告, 施工管理, 街面秩序 -> district enforcement; "
                   "cleaning jobs -> district sanitation; illegal parking -> traffic police brigade."
              if i == 0 and cls == "2001" else None)
        r(f"r-exposed-garbage-{d}", f"sanitation-{d}", "200102", d)
        r(f"r-garbage-heap-{d}", f"sanitation-{d}", "200103", d)
        r(f"r-garbage-heap-cw-{d}", f"enforce-{d}", "200103", d, condition="construction-waste")
        r(f"r-dirty-road-{d}", f"sanitation-{d}", "200104", d)
        r(f"r-bin-overflow-{d}", f"sanitation-{d}", "200113", d)
        r(f"r-snow-ice-{d}", f"sanitation-{d}", "200406", d)
        r(f"r-parking-{d}", f"traffic-police-{d}", "200509", d)
        r(f"r-parking-camera-{d}", "traffic-police", "200509", d, source="sensor",
          note="AI-camera parking violations go to the detachment's off-site enforcement desk."
          if i == 0 else None)
    for rid, cat, dept, note in [
        ("r-dirty-water", "200105", "river-management", None),
        ("r-green-litter", "200106", "landscaping", None),
        ("r-site-dust", "200302", "housing", None),
        ("r-road-dig", "200306", "municipal-facilities", None),
        ("r-emergency", "2004", "municipal-facilities", "突发事件."),
        ("r-water-main", "200402", "water-supply", None),
        ("r-gas-pipe", "200403", "gas", None),
        ("r-drain", "200404", "drainage", None),
        ("r-waterlogging", "200405", "drainage", None),
        ("r-overhead-cable", "200407", "telecom-ct", None),
        ("r-mass-incident", "200408", "public-security", None),
        ("r-fire", "200409", "fire-rescue", None),
        ("r-fire-lane", "200514", "fire-rescue", "Blocked fire lanes: Fire Protection Law art. 28."),
        ("r-touting", "200508", "transport", None),
        ("r-road-surface", "200602", "municipal-facilities", None),
    ]:
        r(rid, dept, cat, note=note)
    r("r-emergency-urgent", "emergency-management", "2004", urgency="urgent",
      note="An urgent emergency without an owner is coordinated by the emergency bureau.")
    r("r-construction-noise-hotline", "ecology-environment", "200301", source="hotline",
      note="Night-time construction noise reported on 12345: the ecology bureau checks night permits.")
    r("r-fumes-hotline", "ecology-environment", "200111", source="hotline")
    for cls, name in (("2001", "appearance"), ("2002", "ads"), ("2005", "street-order")):
        r(f"r-scenic-{name}", "scenic-wenmiao", cls, SCENIC_STREET,
          note="The Wenmiao historic quarter (one street) runs its own street management."
          if cls == "2001" else None)

    # 12345 topics.
    for i, d in enumerate(dists):
        r(f"r-property-{d}", f"property-{d}", "3001", d,
          note="12345 property-management complaints -> the district property office." if i == 0 else None)
        r(f"r-hotline-parking-{d}", f"traffic-police-{d}", "300302", d)
    for rid, cat, dept, place, note in [
        ("r-public-rental", "3001", "housing", PUBLIC_RENTAL_COMMUNITY,
         "A public-rental-housing community managed by the city housing bureau."),
        ("r-compound-fire-lane", "300107", "fire-rescue", "", None),
        ("r-maintenance-fund", "300108", "housing", "", None),
        ("r-housing", "3002", "housing", "", None),
        ("r-traffic-topic", "3003", "transport", "", None),
        ("r-traffic-signal-topic", "300305", "traffic-police", "", None),
        ("r-market", "3004", "market-regulation", "", None),
        ("r-water-outage", "300501", "water-supply", "", None),
        ("r-power-outage", "300502", "power-supply", "", None),
        ("r-gas-fault", "300503", "gas", "", None),
        ("r-broadband", "300504", "telecom-ct", "", None),
        ("r-water-quality", "300505", "water-supply", "", None),
        ("r-environment-topic", "3006", "ecology-environment", "", None),
        ("r-site-complaint", "300603", "housing", "", None),
        ("r-river-pollution", "300604", "river-management", "", None),
    ]:
        r(rid, dept, cat, place, note=note)
    r("r-broadband-app", "telecom-cmcc", "300504", source="app",
      note="Broadband complaints from the city app go to the carrier running the app's help desk.")
    return routes


# ----------------------------------------------------------------------------------------------
# Assets: (category, owner, maintainer; "{d}" is the district code, "{s}" its short name).

ASSET_SPECS = [
    ("100101", "金河水务集团有限公司", "water-supply", 3),
    ("100102", "金河市排水有限公司", "drainage", 2),
    ("100103", "金河市排水有限公司", "drainage", 2),
    ("100104", "金河市排水有限公司", "drainage", 2),
    ("100105", "国网金河供电公司", "power-supply", 1),
    ("100106", "金河市城市管理局", "street-lighting", 1),
    ("100107", "中国电信金河分公司", "telecom-ct", 1),
    ("100109", "中国移动金河分公司", "telecom-cmcc", 1),
    ("100111", "金河燃气集团有限公司", "gas", 2),
    ("100113", "金河水务集团有限公司", "water-supply", 1),   # hydrant: owner maintains, not fire
    ("100118", "金河市城市管理局", "street-lighting", 2),
    ("100118", "金河新城开发投资集团", "street-lighting", 1),
    ("100203", "金河公交集团", "transport", 1),
    ("100209", "金河市公安局交通警察支队", "traffic-police", 1),
    ("100214", "金河市公安局交通警察支队", "traffic-police", 2),
    ("100301", "{s}区城市管理局", "sanitation-{d}", 2),
    ("100305", "{s}区城市管理局", "sanitation-{d}", 2),
    ("100401", "金河市园林绿化管理中心", "landscaping", 1),
    ("100402", "金河市园林绿化管理中心", "landscaping", 2),
    ("100407", "{s}区城市管理局", "landscaping", 1),
    ("100602", "金河市河道管理处", "river-management", 1),
]


def build_assets(rng, grids):
    by_district = {}
    for g in grids:
        by_district.setdefault(g["code"][:6], []).append(g["code"])
    dists = list(DIST_SHORT)
    assets, used = [], set()
    k = 0
    for cat, owner, maint, count in ASSET_SPECS:
        for _ in range(count):
            d = dists[k % len(dists)]
            k += 1
            grid = rng.choice(by_district[d])
            while True:
                aid = f"{d}{cat[2:4]}{cat[4:6]}{rng.randint(1, 3000):06d}"
                if aid not in used:
                    used.add(aid)
                    break
            assets.append({"id": aid, "category": cat, "grid": grid,
                           "owner": owner.format(d=d, s=DIST_SHORT[d]),
                           "maintainer": maint.format(d=d, s=DIST_SHORT[d])})
    assets.sort(key=lambda a: a["id"])
    return assets


# ----------------------------------------------------------------------------------------------

def build():
    rng = random.Random(SEED)
    calendar, groups = build_calendar()
    districts, streets, communities, grids, bounds = build_geography(rng)
    cfg = {
        "name": "Jinhe City (金河市)",
        "calendar": calendar,
        "districts": districts,
        "streets": streets,
        "communities": communities,
        "grids": grids,
        "departments": build_departments(),
        "categories": build_categories(),
        "routes": build_routes(),
        "assets": build_assets(rng, grids),
        "dedup": {"radius_m": 50, "window_hours": 24},
        "intake": {"queue_capacity": 65536, "max_frame_bytes": 1048576,
                   "max_commands_per_frame": 1000, "max_batch": 4096,
                   "request_id_window_hours": 168},
        "escalation": build_escalation(),
    }
    return cfg, groups, bounds


def strip_private(x):
    """Drops the emitter-only keys (those starting with '_')."""
    if isinstance(x, dict):
        return {k: strip_private(v) for k, v in x.items() if not k.startswith("_")}
    if isinstance(x, list):
        return [strip_private(v) for v in x]
    return x


# ----------------------------------------------------------------------------------------------
# Validation: every rule of config.proto plus this sample's own promises (counts, spacing).

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
HHMM_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
DEP_ID_RE = re.compile(r"[a-z0-9_-]{1,64}")


def dist_m(a, b):
    dy = (a["lat"] - b["lat"]) * M_PER_DEG_LAT
    dx = (a["lon"] - b["lon"]) * 111_320.0 * math.cos(math.radians((a["lat"] + b["lat"]) / 2))
    return math.hypot(dx, dy)


def effective(cat, condition):
    """Effective StageLimits of a category, or of one of its conditions (fallback per field)."""
    out = dict(cat.get("limits", {}))
    if condition:
        out.update(condition.get("limits", {}))
    return out


def check_limit(errors, where, t):
    if not isinstance(t, dict) or set(t) - {"value", "clock"}:
        errors.append(f"{where}: malformed time limit {t!r}")
        return
    if not isinstance(t.get("value"), (int, float)) or not t["value"] > 0:
        errors.append(f"{where}: value must be > 0")
    if t.get("clock") not in CLOCKS:
        errors.append(f"{where}: bad clock {t.get('clock')!r}")


def validate(cfg):
    """Returns (errors, warnings, stats)."""
    E, W = [], []
    S = {}

    def need(ok, msg):
        if not ok:
            E.append(msg)

    need(set(cfg) == {"name", "calendar", "districts", "streets", "communities", "grids",
                      "departments", "categories", "routes", "assets", "dedup", "intake",
                      "escalation"},
         f"top-level keys: {sorted(cfg)}")
    need(bool(cfg.get("name")), "name is empty")

    # Calendar.
    cal = cfg["calendar"]
    need(cal["time_zone"] == "Asia/Shanghai" and cal["utc_offset_minutes"] == 480, "time zone")
    prev_end = None
    for i, w in enumerate(cal["windows"]):
        need(HHMM_RE.fullmatch(w["start"]) and HHMM_RE.fullmatch(w["end"]), f"window {i} format")
        need(w["start"] < w["end"], f"window {i} empty")
        need(prev_end is None or prev_end <= w["start"], f"window {i} unsorted/overlapping")
        prev_end = w["end"]
    wd = cal["work_weekdays"]
    need(all(isinstance(x, int) and 1 <= x <= 7 for x in wd) and len(set(wd)) == len(wd),
         "work_weekdays")
    for key, want_work in (("holidays", True), ("make_up_days", False)):
        seen = set()
        for s in cal[key]:
            need(bool(DATE_RE.fullmatch(s)), f"{key}: bad date {s}")
            try:
                d = day(s)
            except ValueError:
                E.append(f"{key}: bad date {s}")
                continue
            need(s not in seen, f"{key}: duplicate {s}")
            seen.add(s)
            need((d.isoweekday() in wd) == want_work,
                 f"{key}: {s} is a {d.strftime('%A')}")
    need(not set(cal["holidays"]) & set(cal["make_up_days"]), "a day is both holiday and make-up")

    # Geography.
    def uniq(items, what):
        codes = [x["code"] for x in items]
        need(len(codes) == len(set(codes)), f"{what}: duplicate codes")
        return set(codes)

    dset = uniq(cfg["districts"], "districts")
    sset = uniq(cfg["streets"], "streets")
    cset = uniq(cfg["communities"], "communities")
    gset = uniq(cfg["grids"], "grids")
    for x in cfg["districts"]:
        need(re.fullmatch(r"\d{6}", x["code"]) and x.get("name"), f"district {x['code']}")
    for x in cfg["streets"]:
        need(re.fullmatch(r"\d{9}", x["code"]) and x["code"][:6] in dset and x.get("name"),
             f"street {x['code']}")
    for x in cfg["communities"]:
        need(re.fullmatch(r"\d{12}", x["code"]) and x["code"][:9] in sset and x.get("name"),
             f"community {x['code']}")
    for g in cfg["grids"]:
        need(re.fullmatch(r"\d{15}", g["code"]) and g["code"][:12] in cset, f"grid {g['code']}")
        need(-90 <= g["lat"] <= 90 and -180 <= g["lon"] <= 180, f"grid {g['code']} coordinates")
    need(all(any(g["code"].startswith(c) for g in cfg["grids"]) for c in cset),
         "a community without grids")
    # Spacing: nearest neighbours about 100 m apart, never within the dedup radius.
    grids = cfg["grids"]
    nn = []
    for i, a in enumerate(grids):
        best = min(dist_m(a, b) for j, b in enumerate(grids) if j != i)
        nn.append(best)
    S["grid_nn_min_m"], S["grid_nn_max_m"] = min(nn), max(nn)
    need(min(nn) > cfg["dedup"]["radius_m"] * 1.5, f"grids too close: {min(nn):.1f} m")
    need(max(nn) < 130, f"a grid has no neighbour within 130 m: {max(nn):.1f} m")
    # Districts are disjoint: every grid's nearest-neighbour search above is global; check that
    # each district's grids lie in a lat/lon box not overlapping the other districts' boxes.
    boxes = {}
    for g in grids:
        b = boxes.setdefault(g["code"][:6], [90, -90, 180, -180])
        b[0], b[1] = min(b[0], g["lat"]), max(b[1], g["lat"])
        b[2], b[3] = min(b[2], g["lon"]), max(b[3], g["lon"])
    keys = sorted(boxes)
    for i, p in enumerate(keys):
        for q in keys[i + 1:]:
            a, b = boxes[p], boxes[q]
            need(a[1] < b[0] or b[1] < a[0] or a[3] < b[2] or b[3] < a[2],
                 f"districts {p} and {q} overlap")

    # Departments.
    deps = {x["id"]: x for x in cfg["departments"]}
    need(len(deps) == len(cfg["departments"]), "duplicate department ids")
    dirs = set()
    for x in cfg["departments"]:
        need(bool(DEP_ID_RE.fullmatch(x["id"])), f"department id {x['id']!r}")
        need(bool(x.get("name")), f"department {x['id']}: no name")
        if "parent" in x:
            need(x["parent"] in deps and x["parent"] != x["id"], f"department {x['id']}: parent")
            need("parent" not in deps.get(x["parent"], {}), f"department {x['id']}: 3 levels")
        ad = x.get("adapter")
        need(isinstance(ad, dict) and list(ad) == ["spool"] and ad["spool"].get("directory"),
             f"department {x['id']}: adapter")
        if isinstance(ad, dict) and "spool" in ad:
            dirs.add(ad["spool"]["directory"])
    need(len(dirs) == len(deps), "two departments share a spool directory")

    # Categories.
    cats = {c["code"]: c for c in cfg["categories"]}
    need(len(cats) == len(cfg["categories"]), "duplicate category codes")
    classes, subs = [], []
    for c in cfg["categories"]:
        where = f"category {c['code']}"
        need(bool(re.fullmatch(r"\d+", c["code"])), f"{where}: code not digits")
        need(bool(c.get("name")), f"{where}: no name")
        need(c.get("kind") in KINDS, f"{where}: kind")
        if "parent" not in c:
            classes.append(c)
            need("limits" not in c and "conditions" not in c, f"{where}: a class has limits")
            need(len(c["code"]) == 4, f"{where}: class code length")
            continue
        subs.append(c)
        p = cats.get(c["parent"])
        need(p is not None and "parent" not in p and "limits" not in p,
             f"{where}: parent {c['parent']} is not a class")
        need(c["code"].startswith(c["parent"]) and len(c["code"]) == 6, f"{where}: code shape")
        need(p is None or p["kind"] == c["kind"], f"{where}: kind differs from its class")
        prefix = {"component": "10", "event": "20", "topic": "30"}.get(c["kind"], "?")
        need(c["code"].startswith(prefix), f"{where}: code prefix vs kind")
        for stage, t in c.get("limits", {}).items():
            need(stage in ("accept", "handle", "verify", "rework"), f"{where}: stage {stage}")
            check_limit(E, f"{where}.limits.{stage}", t)
        need(set(effective(c, None)) >= {"accept", "handle", "verify"},
             f"{where}: accept/handle/verify not all set")
        ids = set()
        for cd in c.get("conditions", []):
            w2 = f"{where}.conditions.{cd.get('id')}"
            need(bool(DEP_ID_RE.fullmatch(cd.get("id", ""))) and cd["id"] not in ids,
                 f"{w2}: id missing or duplicate")
            ids.add(cd.get("id"))
            need(bool(cd.get("name")), f"{w2}: no name")
            for stage, t in cd.get("limits", {}).items():
                check_limit(E, f"{w2}.limits.{stage}", t)
            need(set(effective(c, cd)) >= {"accept", "handle", "verify"}, f"{w2}: incomplete")
    for cl in classes:
        need(any(s["parent"] == cl["code"] for s in subs), f"class {cl['code']} has no subcategory")

    # Routes.
    rids = [r["id"] for r in cfg["routes"]]
    need(len(rids) == len(set(rids)), "duplicate route ids")
    keyset = {}
    grid_codes = sorted(gset)
    for r in cfg["routes"]:
        where = f"route {r['id']}"
        need({k for k in r if not k.startswith("_")} <= {"id", "category_prefix", "condition", "place_prefix", "source", "urgency",
                        "department"}, f"{where}: unknown key")
        need(r.get("department") in deps, f"{where}: department {r.get('department')!r}")
        cp, pp = r.get("category_prefix", ""), r.get("place_prefix", "")
        need(cp == "" or any(code.startswith(cp) for code in cats), f"{where}: category_prefix")
        need(len(pp) in (0, 6, 9, 12, 15) and (pp == "" or any(g.startswith(pp) for g in grid_codes)),
             f"{where}: place_prefix {pp!r}")
        if r.get("condition"):
            covered = {cd["id"] for code, c in cats.items() if code.startswith(cp)
                       for cd in c.get("conditions", [])}
            need(r["condition"] in covered, f"{where}: condition {r['condition']!r}")
        need(r.get("source", "inspector") in SOURCES, f"{where}: source")
        need(r.get("urgency", "normal") in URGENCIES, f"{where}: urgency")
        key = (cp, r.get("condition", ""), pp, r.get("source", ""), r.get("urgency", ""))
        need(key not in keyset, f"{where}: same key as route {keyset.get(key)}")
        keyset.setdefault(key, r["id"])

    # Route every case shape: each (subcategory, condition or none, community, source, urgency)
    # must have exactly one most-specific rule. Places: the first grid of every community, plus
    # every grid named by a 15-digit place_prefix.
    places = sorted({min(g for g in grid_codes if g.startswith(c)) for c in cset}
                    | {r["place_prefix"] for r in cfg["routes"] if len(r.get("place_prefix", "")) == 15})
    wins = {r["id"]: 0 for r in cfg["routes"]}
    unrouted = ambiguous = 0
    examples = {}
    for c in subs:
        conds = [None] + [cd["id"] for cd in c.get("conditions", [])]
        for cond_id in conds:
            rules = [r for r in cfg["routes"] if c["code"].startswith(r.get("category_prefix", ""))
                     and (not r.get("condition") or r["condition"] == cond_id)]
            for place in places:
                pr = [r for r in rules if place.startswith(r.get("place_prefix", ""))]
                for src in SOURCES:
                    for urg in URGENCIES:
                        best, top = None, []
                        for r in pr:
                            if r.get("source") and r["source"] != src:
                                continue
                            if r.get("urgency") and r["urgency"] != urg:
                                continue
                            spec = (len(r.get("category_prefix", "")), bool(r.get("condition")),
                                    len(r.get("place_prefix", "")), bool(r.get("source")),
                                    bool(r.get("urgency")))
                            if best is None or spec > best:
                                best, top = spec, [r]
                            elif spec == best:
                                top.append(r)
                        if not top:
                            unrouted += 1
                            E.append(f"no route for {c['code']}/{cond_id}/{place}/{src}/{urg}")
                        elif len(top) > 1:
                            ambiguous += 1
                            E.append(f"ambiguous: {[t['id'] for t in top]} for "
                                     f"{c['code']}/{cond_id}/{place}/{src}/{urg}")
                        else:
                            wins[top[0]["id"]] += 1
                            examples.setdefault((c["code"], cond_id, place[:6], src, urg),
                                                top[0]["department"])
    dead = [rid for rid, n in wins.items() if n == 0]
    if dead:
        E.append(f"routes that never win: {dead}")
    S["route_examples"] = examples
    S["cases_routed"] = sum(wins.values())

    # Assets.
    aids = [a["id"] for a in cfg["assets"]]
    need(len(aids) == len(set(aids)), "duplicate asset ids")
    for a in cfg["assets"]:
        where = f"asset {a['id']}"
        need(bool(re.fullmatch(r"\d{16,17}", a["id"])), f"{where}: id format")
        c = cats.get(a["category"])
        need(c is not None and c["kind"] == "component" and "parent" in c, f"{where}: category")
        need(a["grid"] in gset, f"{where}: grid")
        need(a["id"][:6] == a["grid"][:6], f"{where}: id district differs from grid district")
        need(a["id"][6:10] == a["category"][2:6], f"{where}: id major/minor differs from category")
        need(bool(a.get("owner")), f"{where}: owner")
        need(a.get("maintainer") in deps, f"{where}: maintainer")

    # Policies.
    need(cfg["dedup"]["radius_m"] > 0 and cfg["dedup"]["window_hours"] > 0, "dedup")
    need(all(isinstance(v, int) and v > 0 for v in cfg["intake"].values()), "intake")

    # Promised sizes.
    counts = {
        "districts": len(dset), "streets": len(sset), "communities": len(cset),
        "grids": len(gset), "departments": len(deps), "classes": len(classes),
        "subcategories": len(subs), "routes": len(cfg["routes"]), "assets": len(cfg["assets"]),
        "conditions": sum(len(c.get("conditions", [])) for c in subs),
        "holidays": len(cal["holidays"]), "make_up_days": len(cal["make_up_days"]),
    }
    for k, lo in (("districts", 4), ("streets", 12), ("communities", 40), ("grids", 400),
                  ("departments", 20), ("subcategories", 80), ("assets", 25)):
        need(counts[k] >= lo, f"only {counts[k]} {k} (want >= {lo})")
    for kind in KINDS:
        need(any(c["kind"] == kind for c in subs), f"no {kind} subcategories")
    S["counts"] = counts
    S["by_kind"] = {k: (sum(1 for c in classes if c["kind"] == k),
                        sum(1 for c in subs if c["kind"] == k)) for k in sorted(KINDS)}
    return E, W, S


# ----------------------------------------------------------------------------------------------
# Emitter (block style; grids one flow mapping per line).

def q(s):
    return json.dumps(s, ensure_ascii=False)


ENUM_KEYS = {"clock", "kind", "source", "urgency"}


def scalar(v, key=None):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        # Enum values (lower-case words) stay bare; everything else is a quoted string.
        return v if key in ENUM_KEYS else q(v)
    raise TypeError(v)


def emit_block(out, obj, indent, trail=None):
    """Emits a dict's items at `indent`. '_comment' -> comment line; '_en' -> comment on 'name'."""
    pad = " " * indent
    for k, v in obj.items():
        if k.startswith("_"):
            continue
        tail = f"  # {obj['_en']}" if k == "name" and "_en" in obj else ""
        if isinstance(v, dict):
            out.append(f"{pad}{k}:")
            emit_block(out, v, indent + 2)
        elif isinstance(v, list):
            out.append(f"{pad}{k}:")
            emit_list(out, v, indent + 2)
        else:
            out.append(f"{pad}{k}: {scalar(v, k)}{tail}")


def emit_list(out, items, indent):
    pad = " " * indent
    for it in items:
        if isinstance(it, dict):
            if "_comment" in it:
                out.append(f"{pad}# {it['_comment']}")
            sub = []
            emit_block(sub, it, indent + 2)
            sub[0] = pad + "- " + sub[0][indent + 2:]
            out.extend(sub)
        else:
            out.append(f"{pad}- {scalar(it)}")


HEADER = """\
# sample-city.yaml: the casebus demo city, "Jinhe City (金河市)", a fictional prefecture-level city.
# GENERATED by deploy/config/gen_sample_city.py -- edit the generator, not this file, then run
#   python3 deploy/config/gen_sample_city.py           (writes and validates)
#   python3 deploy/config/gen_sample_city.py --check   (validates the file on disk)
#
# Schema: protos/casebus/v1/config.proto (CityConfig). Keys are the proto field names; enum values
# are lower case (clock: working_hours, kind: component, source: hotline, urgency: urgent).
# Codes and ids are quoted strings. Top-level keys:
#   name          the city's display name.
#   calendar      the working-time calendar behind working_hours / working_days limits: time zone,
#                 daily working windows, working weekdays (ISO 1=Mon), statutory holidays that fall
#                 on working weekdays, and weekend make-up working days (调休).
#   districts     6-digit district codes (GB/T 2260 shape); streets: 9 digits = district + 3;
#   streets       communities: 12 digits = street + 3; grids (单元网格): 15 digits = community + 3,
#   communities   numbered west->east, north->south, each with its centroid (lat/lon, degrees).
#   grids         Districts are neighbouring rectangles around (30.27, 120.15); grid centroids are
#                 ~100 m apart, so two reports inside the 50 m dedup radius are in the same or a
#                 neighbouring grid.
#   departments   handling units: id ([a-z0-9_-]), name, optional parent (second-level unit), and
#                 the adapter that delivers work orders (here a spool directory per department).
#   categories    two taxonomies: 数字城管 components (10cc, subcategories 10ccss) and events (20cc,
#                 20ccss) after CJ/T 214 / GB/T 30428.2, and 12345 hotline topics (30cc, 30ccss).
#                 A class has no limits; a subcategory has accept/handle/verify (rework) limits and
#                 optionally 立案条件 conditions with their own limits (fallback to the category's).
#   routes        routing rules: the most specific matching rule wins (category_prefix length,
#                 condition, place_prefix length, source, urgency); no two rules share all five keys.
#                 A catch-all per district sends anything else to the district command centre.
#   assets        located component instances, 16-digit ids = district(6) + major(2) + minor(2) +
#                 sequence(6); a case naming an asset routes to its maintainer first.
#   dedup         duplicate-report policy: reports of one category within radius_m and window_hours.
#   intake        intake queue and frame limits.
"""


def emit(cfg, groups, bounds):
    out = HEADER.rstrip("\n").split("\n")
    out.append("")
    out.append(f"name: {q(cfg['name'])}")
    out.append("")
    cal = cfg["calendar"]
    out += ["calendar:",
            f"  time_zone: {q(cal['time_zone'])}",
            f"  utc_offset_minutes: {cal['utc_offset_minutes']}",
            "  windows:"]
    for w in cal["windows"]:
        out += [f"    - start: {q(w['start'])}", f"      end: {q(w['end'])}"]
    out.append(f"  work_weekdays: [{', '.join(str(d) for d in cal['work_weekdays'])}]")
    out.append("  # Days off that fall on working weekdays (weekend days off need no entry).")
    out.append("  holidays:")
    for comment, off, _ in groups:
        out.append(f"    # {comment}")
        out += [f"    - {q(s)}" for s in off]
    out.append("  # Weekend days that are working days (调休).")
    out.append("  make_up_days:")
    mk = []
    for comment, _, makeups in groups:
        for s in makeups:
            mk.append((s, comment.split(":")[0]))
    for s, festival in sorted(mk):
        out.append(f"    - {q(s)}  # {day(s).strftime('%a')}, for {festival}")
    out.append("")

    out.append("# Four districts, 2 x 2, each 1.6 km x 1.2 km:")
    for d in cfg["districts"]:
        s, n, w, e = bounds[d["code"]]
        out.append(f"#   {d['code']} {d['name']}: lat {s:.4f}..{n:.4f}, lon {w:.4f}..{e:.4f}")
    for key in ("districts", "streets", "communities"):
        out.append(f"{key}:")
        emit_list(out, cfg[key], 2)
        out.append("")
    out.append(f"# {len(cfg['grids'])} unit grids, ~100 m x 100 m; some cells are water or rail "
               "land and have no grid.")
    out.append("grids:")
    last_comm = None
    comm_names = {c["code"]: c["name"] for c in cfg["communities"]}
    for g in cfg["grids"]:
        if g["code"][:12] != last_comm:
            last_comm = g["code"][:12]
            out.append(f"  # {last_comm} {comm_names[last_comm]}")
        out.append(f"  - {{code: {q(g['code'])}, lat: {g['lat']:.6f}, lon: {g['lon']:.6f}}}")
    out.append("")
    out.append("departments:")
    emit_list(out, cfg["departments"], 2)
    out.append("")
    out.append("# Time limits: accept runs from dispatch (签收), handle from dispatch (处置), verify from")
    out.append("# resolve (核查); rework is the handle limit after a failed check (default: handle).")
    out.append("categories:")
    cats = []
    for c in cfg["categories"]:
        c = dict(c)
        if "parent" not in c:
            c["_comment"] = f"---- {c['code']} {c['name']} ({c['_en'][7:]}) ----"
        cats.append(c)
    emit_list(out, cats, 2)
    out.append("")
    out.append("routes:")
    emit_list(out, cfg["routes"], 2)
    out.append("")
    out.append("assets:")
    emit_list(out, cfg["assets"], 2)
    out.append("")
    out.append("dedup:")
    emit_block(out, cfg["dedup"], 2)
    out.append("")
    out.append("intake:")
    emit_block(out, cfg["intake"], 2)
    out.append("")
    out.append("# Escalation ladder per stage: steps at fractions of the limit, each notifying a target")
    out.append("# (responsible_department, district_center, leadership) through its adapter.")
    out.append("escalation:")
    emit_block(out, cfg["escalation"], 2)
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------
# Minimal reader for the YAML subset emit() writes (block mappings and sequences, one-line flow
# mappings and sequences, double-quoted strings, numbers, bare words, comments).

def strip_comment(line):
    in_q = esc = False
    for i, ch in enumerate(line):
        if in_q:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_q = False
        elif ch == '"':
            in_q = True
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


KEY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?:\s+(.*))?$")


def parse_scalar(s):
    s = s.strip()
    if s.startswith('"'):
        return json.loads(s)
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", s):
        return float(s)
    if s in ("true", "false"):
        return s == "true"
    return s


def parse_flow(s):
    s = s.strip()
    if not (s.startswith("{") or s.startswith("[")):
        return parse_scalar(s)
    close = "}" if s[0] == "{" else "]"
    assert s.endswith(close), s
    body, parts, cur, in_q, esc = s[1:-1], [], "", False, False
    for ch in body:
        if in_q:
            cur += ch
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_q = False
        elif ch == '"':
            in_q, cur = True, cur + ch
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    if close == "]":
        return [parse_scalar(p) for p in parts]
    out = {}
    for p in parts:
        k, v = p.split(":", 1)
        out[k.strip()] = parse_scalar(v)
    return out


def parse_yaml(text):
    lines = []
    for raw in text.split("\n"):
        s = strip_comment(raw).rstrip()
        if s.strip():
            lines.append([len(s) - len(s.lstrip(" ")), s.strip()])
    pos = [0]

    def node(indent):
        return seq(indent) if lines[pos[0]][1].startswith("- ") else mapping(indent)

    def mapping(indent):
        d = {}
        while pos[0] < len(lines) and lines[pos[0]][0] == indent \
                and not lines[pos[0]][1].startswith("- "):
            m = KEY_RE.fullmatch(lines[pos[0]][1])
            assert m, f"cannot parse: {lines[pos[0]][1]!r}"
            key, rest = m.group(1), m.group(2)
            assert key not in d, f"duplicate key {key}"
            pos[0] += 1
            if rest:
                d[key] = parse_flow(rest)
            elif pos[0] < len(lines) and lines[pos[0]][0] > indent:
                d[key] = node(lines[pos[0]][0])
            else:
                d[key] = None
        assert pos[0] == len(lines) or lines[pos[0]][0] < indent, \
            f"bad indentation at {lines[pos[0]][1]!r}"
        return d

    def seq(indent):
        out = []
        while pos[0] < len(lines) and lines[pos[0]][0] == indent \
                and lines[pos[0]][1].startswith("- "):
            content = lines[pos[0]][1][2:]
            if KEY_RE.fullmatch(content):
                lines[pos[0]] = [indent + 2, content]
                out.append(mapping(indent + 2))
            else:
                pos[0] += 1
                out.append(parse_flow(content))
        return out

    root = mapping(0)
    assert pos[0] == len(lines), f"trailing content at {lines[pos[0]][1]!r}"
    return root


# ----------------------------------------------------------------------------------------------

def summary(S, path):
    c = S["counts"]
    bk = S["by_kind"]
    print(f"{os.path.relpath(path)}: OK")
    print(f"  districts {c['districts']}, streets {c['streets']}, communities {c['communities']}, "
          f"grids {c['grids']} (nearest neighbour {S['grid_nn_min_m']:.0f}..{S['grid_nn_max_m']:.0f} m)")
    print(f"  departments {c['departments']}")
    print(f"  categories {c['classes'] + c['subcategories']}: {c['classes']} classes, "
          f"{c['subcategories']} subcategories, {c['conditions']} conditions "
          f"(component {bk['component'][0]}/{bk['component'][1]}, event {bk['event'][0]}/{bk['event'][1]}, "
          f"topic {bk['topic'][0]}/{bk['topic'][1]} classes/subcategories)")
    print(f"  routes {c['routes']} (every one wins for some case; {S['cases_routed']} case shapes "
          f"routed, none ambiguous or unrouted)")
    print(f"  assets {c['assets']}")
    print(f"  calendar: {c['holidays']} weekday holidays, {c['make_up_days']} make-up days (2025-2026)")
    ex = S["route_examples"]
    for key in [("200404", None, "330102", "inspector", "normal"),
                ("200509", None, "330103", "inspector", "normal"),
                ("200509", None, "330103", "sensor", "normal"),
                ("200514", None, "330104", "app", "normal"),
                ("300101", None, "330105", "hotline", "normal"),
                ("200101", "demolition", "330102", "inspector", "normal"),
                ("200401", None, "330104", "inspector", "urgent"),
                ("200699", None, "330105", "app", "normal")]:
        print(f"  e.g. {'/'.join(str(k) for k in key if k)} -> {ex[key]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="validate the YAML on disk instead of writing it")
    ap.add_argument("--out", default=OUT_PATH)
    args = ap.parse_args()

    cfg, groups, bounds = build()
    E, _, S = validate(cfg)
    if E:
        print("generated config is invalid:", *E[:50], sep="\n  ", file=sys.stderr)
        return 1
    text = emit(cfg, groups, bounds)
    if not args.check:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    with open(args.out, encoding="utf-8") as f:
        on_disk = f.read()
    parsed = parse_yaml(on_disk)
    E, _, S = validate(parsed)
    if E:
        print(f"{args.out} is invalid:", *E[:50], sep="\n  ", file=sys.stderr)
        return 1
    if parsed != strip_private(cfg):
        print(f"{args.out} is valid but differs from what the generator builds "
              "(edited by hand? rerun without --check)", file=sys.stderr)
        return 1
    if on_disk != text:
        print(f"note: {args.out} has the same data but different text (comments/layout)",
              file=sys.stderr)
    summary(S, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
