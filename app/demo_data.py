"""Deterministic demo patients for the "Demo Dental Clinic": pure data, no database.

Identity numbers are structurally valid (GB 11643 check digits, real area codes) but random; phones are
unique mainland mobiles in E.164; e-mail addresses use only the reserved example.com / example.cn domains.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from core.validation import resident_id_check_digit

CHANNELS = ("sms", "phone", "email", "wechat", "app", "post")
PURPOSES = ("care", "greeting", "campaign")  # what a patient may be contacted for (care for every patient)
SEGMENTS = ("vip", "special_needs", "orthodontics", "restoration", "implant", "periodontal")
RELATIONSHIPS = ("spouse", "parent", "child", "sibling", "guardian", "friend", "other")

# Chinese words carry their pinyin (used for e-mail addresses): "王wang", "欧阳ouyang".
CN_SURNAMES = ("王wang", "李li", "张zhang", "刘liu", "陈chen", "杨yang", "黄huang", "赵zhao", "吴wu", "周zhou", "徐xu", "孙sun",
               "马ma", "朱zhu", "胡hu", "郭guo", "何he", "林lin", "高gao", "罗luo", "郑zheng", "梁liang", "谢xie", "宋song",
               "唐tang", "韩han", "冯feng", "邓deng", "曹cao", "彭peng", "曾zeng", "田tian", "董dong", "潘pan", "袁yuan", "蔡cai",
               "蒋jiang", "杜du", "叶ye", "程cheng", "魏wei", "苏su", "沈shen", "姚yao", "欧阳ouyang", "司马sima")
CN_GIVEN = {
    "male": ("伟wei", "强qiang", "磊lei", "军jun", "勇yong", "杰jie", "涛tao", "明ming", "超chao", "浩hao", "鹏peng", "辉hui",
        "建jian", "志zhi", "国guo", "斌bin", "俊jun", "博bo", "刚gang", "峰feng", "宇yu", "晨chen", "子zi", "文wen", "嘉jia",
        "思si"),
    "female": ("芳fang", "娜na", "敏min", "静jing", "丽li", "艳yan", "婷ting", "雪xue", "琳lin", "颖ying", "慧hui", "洁jie",
        "玲ling", "燕yan", "倩qian", "悦yue", "欣xin", "梅mei", "璐lu", "晨chen", "佳jia", "雨yu", "晓xiao", "诗shi", "梓zi",
        "一yi"),
}
EN_GIVEN = {
    "male": ("James", "Oliver", "William", "Thomas", "Daniel", "Jack", "Henry", "Samuel", "Benjamin", "Lucas",
        "Michael", "David", "Robert", "Andrew", "Christopher", "Matthew", "Patrick", "Richard", "Peter", "George",
        "Edward", "Liam"),
    "female": ("Emily", "Olivia", "Sophie", "Charlotte", "Grace", "Hannah", "Chloe", "Lucy", "Amelia", "Isabella",
        "Emma", "Sarah", "Rachel", "Laura", "Megan", "Jessica", "Anna", "Claire", "Fiona", "Margaret", "Helen",
        "Susan"),
}
EN_SURNAMES = ("Carter", "O'Neill", "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Walker",
               "Wright", "Robinson", "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris",
               "Martin", "Jackson", "Clarke", "Lewis", "Baker", "Murphy", "O'Brien", "Kelly", "Fischer", "Dubois",
               "Rossi", "Schmidt", "Anderson", "Campbell", "Stewart", "MacDonald", "Novak", "Larsen")
# (GB/T 2260 area code, Chinese prefix, English district) -- address areas double as ID areas.
AREAS = (
    ("110105", "北京市朝阳区", "Chaoyang District, Beijing"), ("110108", "北京市海淀区", "Haidian District, Beijing"),
    ("310104", "上海市徐汇区", "Xuhui District, Shanghai"), ("310115", "上海市浦东新区", "Pudong New Area, Shanghai"),
    ("440106", "广东省广州市天河区", "Tianhe District, Guangzhou"),
    ("440305", "广东省深圳市南山区", "Nanshan District, Shenzhen"),
    ("330106", "浙江省杭州市西湖区", "Xihu District, Hangzhou"), ("510107", "四川省成都市武侯区", "Wuhou District, Chengdu"),
    ("320102", "江苏省南京市玄武区", "Xuanwu District, Nanjing"), ("420106", "湖北省武汉市武昌区", "Wuchang District, Wuhan"),
)
BIRTH_AREAS = tuple(a[0] for a in AREAS) + ("370102", "410105", "430104", "210102", "350203", "610113")
ROADS = ("建国路Jianguo", "中山路Zhongshan", "人民路Renmin", "解放路Jiefang", "朝阳路Chaoyang", "和平路Heping", "文化路Wenhua",
         "新华路Xinhua", "学院路Xueyuan", "光明路Guangming", "科技路Keji", "滨江路Binjiang")
ESTATES = ("阳光花园", "锦绣家园", "翠湖苑", "华府小区", "和平里小区", "金色家园")
MOBILE_PREFIXES = tuple(str(n) for n in (*range(130, 140), 150, 151, 152, *range(155, 160), 166, 173, 177,
                                          *range(180, 190), 191, 198, 199))
CN_JOBS = ("教师", "工程师", "会计", "护士", "公务员", "销售经理", "软件工程师", "个体经营", "医生", "设计师", "司机", "厨师", "律师", "银行职员", "记者",
           "快递员", "公司职员", "研究员")
EN_JOBS = ("Teacher", "Software engineer", "Consultant", "Designer", "Journalist", "Chef", "Architect", "Diplomat",
           "Banker", "Researcher", "English teacher", "Marketing manager")
# (condition, usual medication or None, minimum age)
CONDITIONS = (("Hypertension", "Amlodipine 5 mg daily", 40), ("Type 2 diabetes", "Metformin 500 mg twice daily", 40),
              ("Atrial fibrillation", "Warfarin 3 mg daily (INR monitored)", 55),
              ("Coronary heart disease with stent", "Aspirin 100 mg daily", 50),
              ("Osteoporosis", "Alendronate 70 mg weekly", 55), ("Hyperlipidaemia", "Atorvastatin 20 mg nightly", 40),
              ("Hypothyroidism", "Levothyroxine 50 mcg daily", 20), ("Asthma", "Salbutamol inhaler as needed", 4),
              ("Chronic gastritis", "Omeprazole 20 mg daily", 25), ("Hepatitis B carrier", None, 18))
DENTAL_EVENTS = (("fissure sealants", 6), ("root canal treatment tooth {t}", 10), ("orthodontic treatment", 10),
                 ("extraction of tooth {t}", 12), ("wisdom tooth extraction", 18),
                 ("crown on tooth {t}", 20), ("scaling and root planing", 25))
DIAGNOSES = {
    "orthodontics": ("Malocclusion class II", "Malocclusion class III", "Dental crowding", "Anterior open bite"),
    "restoration": ("Dental caries tooth {t}", "Fractured tooth {t}", "Irreversible pulpitis tooth {t}"),
    "implant": ("Missing tooth {t}", "Partial edentulism", "Failing bridge at tooth {t}"),
    "periodontal": ("Chronic periodontitis", "Gingivitis", "Gingival recession"),
}
EXTRA_DIAGNOSES = ("Bruxism", "Temporomandibular disorder", "Dentine hypersensitivity")
TEETH = (11, 14, 16, 17, 21, 24, 26, 27, 35, 36, 37, 45, 46, 47)
ALLERGIES = ("Penicillin", "Amoxicillin", "Latex", "Ibuprofen", "Iodine", "Nickel", "Sulfonamides", "Lidocaine")
DIETS = ("Vegetarian", "Halal", "Lactose intolerant", "Soft foods preferred", "Vegan", "Low-salt diet", "Gluten-free")
ACTIVITIES = ("Prefers morning appointments", "Weekend appointments only", "Plays contact sports; mouthguard advised",
              "Runs marathons", "Tai chi in the mornings", "Swims regularly", "Square dancing in the evenings")
SPECIAL_NEEDS = ("Uses a wheelchair; needs ground-floor treatment room",
                 "Hearing impaired; prefers written instructions", "Needs large-print documents",
                 "Must be accompanied by a family member", "Severe dental anxiety; prefers short appointments",
                 "Limited mobility; needs help into the chair", "Autism spectrum; quiet room and extra time")
TAGS = ("wechat-referral", "复诊", "new-patient", "recall-6m", "recall-12m", "referral-friend", "whitening",
        "commercial-insurance", "corporate-plan", "prefers-female-dentist", "老客户", "转诊", "online-booking")
CONTACT_NOTES = {True: ("下班后联系", "仅在紧急情况下联系", "只会说粤语", "持有医疗授权委托书", "夜班，请先发短信", "住在同一小区"),
                 False: ("Call after 6 pm", "Works night shifts; text first", "Holds medical power of attorney",
                         "Lives nearby", "Prefers WeChat messages", "Only in an emergency")}


@dataclass(frozen=True)
class DemoContact:
    name: str
    relationship: str
    phone: str
    is_emergency: bool
    may_receive_information: bool
    notes: str | None


@dataclass(frozen=True)
class DemoPatient:
    full_name: str
    sex: str
    birth_date: date
    occupation: str | None
    address: str | None
    national_id_type: str
    national_id: str
    phone: str | None
    alt_phone: str | None
    email: str | None
    preferred_channel: str
    preferred_language: str
    contact_consent: bool
    contact_channels: tuple[str, ...]
    contact_purposes: tuple[str, ...]
    medical_history: str | None
    diagnoses: str | None
    allergies: str | None
    current_medication: str | None
    diet_preferences: str | None
    activity_preferences: str | None
    special_needs: str | None
    segments: tuple[str, ...]
    tags: tuple[str, ...]
    contacts: tuple[DemoContact, ...]


def _split(word: str) -> tuple[str, str]:
    """"欧阳ouyang" -> ("欧阳", "ouyang")."""
    i = next(i for i, ch in enumerate(word) if ch.isascii())
    return word[:i], word[i:]


def _name(rng: random.Random, chinese: bool, sex: str, surname: str | None = None) -> tuple[str, str, str]:
    """(full name, surname key, e-mail local part)."""
    if chinese:
        key = surname or (rng.choice(CN_SURNAMES[:10]) if rng.random() < 0.5 else rng.choice(CN_SURNAMES))
        sur, sur_py = _split(key)
        parts = [_split(rng.choice(CN_GIVEN[sex])) for _ in range(1 if rng.random() < 0.35 else 2)]
        return sur + "".join(p[0] for p in parts), key, "".join(p[1] for p in parts) + "." + sur_py
    key = surname or rng.choice(EN_SURNAMES)
    given = rng.choice(EN_GIVEN[sex])
    return f"{given} {key}", key, f"{given}.{key}".lower().replace("'", "")


def _phone(rng: random.Random, used: set[str]) -> str:
    while (phone := f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}") in used:
        pass
    used.add(phone)
    return phone


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _national_id(rng: random.Random, kind: str, birth: date, sex: str, used: set[str]) -> str:
    while True:
        if kind == "resident_id":
            parity = {"male": 1, "female": 0}.get(sex, rng.randrange(2))
            seq = f"{rng.randrange(100):02d}{rng.randrange(parity, 10, 2)}"
            first17 = f"{rng.choice(BIRTH_AREAS)}{birth:%Y%m%d}{seq}"
            value = first17 + resident_id_check_digit(first17)
        elif kind == "hk_macao_permit":
            value = f"{rng.choice('HM')}{rng.randrange(10**8):08d}"
        else:
            digits = f"{rng.randrange(10**9):09d}"  # passports: nine digits or a letter and eight digits
            value = digits if rng.random() < 0.5 else rng.choice("CEGKNP") + digits[1:]
        if value not in used:
            used.add(value)
            return value


def _address(rng: random.Random, chinese: bool) -> str:
    _, area_cn, area_en = rng.choice(AREAS[:2]) if rng.random() < 0.5 else rng.choice(AREAS)
    road_cn, road_en = _split(rng.choice(ROADS))
    no, unit, room = rng.randint(1, 399), rng.randint(1, 6), rng.randint(1, 28) * 100 + rng.randint(1, 4)
    if not chinese:
        return f"Apt {room}, Building {unit}, {no} {road_en} Road, {area_en}"
    if rng.random() < 0.5:
        return f"{area_cn}{road_cn}{no}号{unit}单元{room}"
    return f"{area_cn}{road_cn}{no}号{rng.choice(ESTATES)}{rng.randint(1, 20)}号楼{unit}单元{room}室"


def _contacts(rng: random.Random, chinese: bool, sex: str, age: int, patient: tuple[str, str], phones: set[str]
              ) -> tuple[DemoContact, ...]:
    full_name, surname = patient
    rels: tuple[str, ...]
    weights: tuple[int, ...]
    if age < 18:
        count, rels, weights = rng.choice((1, 1, 2, 2, 2)), ("parent", "guardian", "sibling"), (10, 1, 1)
    elif age >= 65:
        count, rels, weights = rng.choice((1, 1, 2, 2, 3)), ("child", "spouse", "sibling", "other"), (8, 5, 2, 1)
    else:
        count = rng.choice((0, 1, 1, 1, 2, 2, 3))
        rels = ("spouse", "parent", "sibling", "friend", "child", "other")
        weights = (6 if age >= 25 else 1, 4 if age < 50 else 1 if age < 60 else 0, 2, 2, 3 if age >= 40 else 0, 1)
    # Chinese children take the father's surname and wives keep theirs; English spouses often share one.
    husband = rng.choice(CN_SURNAMES) if chinese and sex == "female" else surname
    result: list[DemoContact] = []
    for i in range(count):
        k = 2 if i == 0 and age < 18 else len(rels)  # a minor's first contact is a parent or guardian
        rel = rng.choices(rels[:k], weights[:k])[0]
        if rel == "spouse" and any(c.relationship == "spouse" for c in result):
            rel = "sibling"
        father = chinese and rel == "parent" and not any(c.relationship == "parent" for c in result)
        c_sex = {"male": "female", "female": "male"}[sex] if rel == "spouse" else rng.choice(("female", "male"))
        c_sex = "male" if father else c_sex
        foreign_spouse = rel == "spouse" and not chinese and rng.random() < 0.25  # a Chinese wife or husband
        kin = {"child": husband, "sibling": surname, "parent": surname if father or not chinese else None,
               "spouse": (husband if sex == "female" else None) if chinese else surname}.get(rel)
        key = None if foreign_spouse or (rel == "spouse" and not chinese and rng.random() < 0.3) else kin
        while (name := _name(rng, chinese != foreign_spouse, c_sex, key)[0]) == full_name:
            pass
        inform = {"parent": 1.0, "guardian": 1.0, "spouse": 0.7, "child": 0.8, "sibling": 0.4}.get(rel, 0.15)
        must_flag = i == 0 and (age < 18 or age >= 65)
        result.append(DemoContact(
            name=name, relationship=rel, phone=_phone(rng, phones),
            is_emergency=must_flag or rng.random() < (0.6 if i == 0 else 0.3),
            may_receive_information=rng.random() < inform,
            notes=rng.choice(CONTACT_NOTES[chinese]) if rng.random() < 0.25 else None,
        ))
    return tuple(result)


def _purposes(rng: random.Random) -> tuple[str, ...]:
    """Care reminders for everyone; about half also welcome greetings, a third campaigns."""
    greeting, campaign = rng.random() < 0.5, rng.random() < 0.35
    return tuple(p for p in PURPOSES if p == "care" or (p == "greeting" and greeting) or (p == "campaign" and campaign))


def _patient(rng: random.Random, wishes: random.Random, today: date, phones: set[str], ids: set[str],
             emails: set[str]) -> DemoPatient:
    chinese = rng.random() < 0.75
    low, high = rng.choices(((4, 12), (13, 17), (18, 39), (40, 64), (65, 92)), (12, 10, 33, 27, 18))[0]
    age = rng.randint(low, high)
    latest, earliest = _years_before(today, age), _years_before(today, age + 1) + timedelta(days=1)
    birth = earliest + timedelta(days=rng.randint(0, (latest - earliest).days))
    r = rng.random()
    sex = "unknown" if r < 0.01 else "other" if r < 0.02 else "female" if r < 0.53 else "male"
    name_sex = sex if sex in ("female", "male") else rng.choice(("female", "male"))
    full_name, surname, local = _name(rng, chinese, name_sex)
    id_type = ("resident_id" if rng.random() < 0.96 else "hk_macao_permit") if chinese else (
        "passport" if rng.random() < 0.85 else "hk_macao_permit")
    national_id = _national_id(rng, id_type, birth, sex, ids)
    if age >= (60 if chinese else 66):
        occupation: str | None = ("退休" if chinese else "Retired") if rng.random() < 0.85 else None
    elif age < 6:
        occupation = None
    elif age <= 22 and (age < 18 or rng.random() < 0.6):
        occupation = "学生" if chinese else "Student"
    else:
        occupation = rng.choice(CN_JOBS if chinese else EN_JOBS) if rng.random() < 0.9 else None
    address = _address(rng, chinese) if rng.random() < 0.92 else None
    phone = _phone(rng, phones) if (age >= 12 or rng.random() < 0.2) and rng.random() < 0.97 else None
    alt_phone = _phone(rng, phones) if phone and rng.random() < 0.12 else None
    email = None
    if rng.random() < (0.75 if not chinese else 0.05 if age < 18 else 0.1 if age >= 65 else 0.3):
        domain = "example.cn" if chinese and rng.random() < 0.7 else "example.com"
        email, n = f"{local}@{domain}", 1
        while email in emails:
            n += 1
            email = f"{local}{n}@{domain}"
        emails.add(email)
    available = [c for c in CHANNELS if (c in ("sms", "phone", "wechat") and phone) or (c == "email" and email)
                 or (c == "post" and address) or c == "app"]
    base = {"sms": 25, "phone": 35 if age >= 65 else 20, "email": 2 if chinese else 35,
            "wechat": 45 if chinese else 25, "app": 7, "post": 2}
    preferred = rng.choices(available, [base[c] for c in available])[0]
    consent = rng.random() < 0.85
    extra = rng.sample([c for c in available if c != preferred], rng.randint(0, min(2, len(available) - 1)))
    channels = tuple(c for c in CHANNELS if c == preferred or c in extra) if consent else ()
    conditions = [c for c in CONDITIONS if c[2] <= age and rng.random() < (0.12 if age >= 50 else 0.04)]
    events = [e for e in DENTAL_EVENTS if e[1] <= age and rng.random() < 0.15]
    history = [f"{c[0]} since {rng.randint(birth.year + max(age // 2, c[2] - 10), today.year - 1)}"
               for c in conditions] + [
        f"{e[0].format(t=rng.choice(TEETH))} in {rng.randint(birth.year + e[1], today.year)}" for e in events]
    medication = [c[1] for c in conditions if c[1] and rng.random() < 0.85]
    odds = {"orthodontics": 0.45 if 8 <= age <= 18 else 0.12 if 19 <= age <= 40 else 0.0,
            "restoration": 0.3, "implant": 0.25 if age >= 40 else 0.03 if age >= 20 else 0.0,
            "periodontal": 0.35 if age >= 35 else 0.1 if age >= 18 else 0.0}
    clinical = [s for s in SEGMENTS if rng.random() < odds.get(s, 0.0)]
    found = ["Caries of primary molars" if s == "restoration" and age < 12
             else rng.choice(DIAGNOSES[s]).format(t=rng.choice(TEETH)) for s in clinical]
    found += [rng.choice(EXTRA_DIAGNOSES)] if age >= 14 and rng.random() < 0.1 else []
    diagnoses = "; ".join([found[0]] + [d[0].lower() + d[1:] for d in found[1:]]) if found else None
    needs_odds = 0.3 if age >= 65 else 0.06 if age < 18 else 0.04
    special = rng.choice(SPECIAL_NEEDS) if rng.random() < needs_odds else None
    segments = tuple(s for s in SEGMENTS if s in clinical or (s == "vip" and rng.random() < 0.05)
                     or (s == "special_needs" and special))
    tag_pool = TAGS + (("night-guard",) if "Bruxism" in found else ())
    tag_pool += ("school-screening",) if age < 18 else ()
    return DemoPatient(
        full_name=full_name, sex=sex, birth_date=birth, occupation=occupation, address=address,
        national_id_type=id_type, national_id=national_id, phone=phone, alt_phone=alt_phone, email=email,
        preferred_channel=preferred,
        preferred_language=("en" if rng.random() < 0.85 else "zh-CN") if not chinese else "zh-CN",
        contact_consent=consent, contact_channels=channels, contact_purposes=_purposes(wishes),
        medical_history="; ".join(history) + "." if history else None, diagnoses=diagnoses,
        allergies="; ".join(rng.sample(ALLERGIES, rng.choice((1, 1, 2)))) if rng.random() < 0.15 else None,
        current_medication="; ".join(medication) or None,
        diet_preferences=rng.choice(DIETS) if rng.random() < 0.15 else None,
        activity_preferences=rng.choice(ACTIVITIES + (("After-school appointments",) if age < 18 else ()))
        if rng.random() < 0.2 else None,
        special_needs=special, segments=segments,
        tags=tuple(rng.sample(tag_pool, rng.choice((0, 1, 1, 2, 2, 3)))),
        contacts=_contacts(rng, chinese, name_sex, age, (full_name, surname), phones),
    )


def demo_patients(count: int = 200, *, seed: int = 2026, today: date = date(2026, 11, 1)) -> list[DemoPatient]:
    """``count`` realistic, reproducible demo patients aged 4 to 92 on ``today``."""
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)
    wishes = random.Random(f"purposes:{seed}")  # a stream of its own: the rest of the data stays as it was
    phones, ids, emails = set[str](), set[str](), set[str]()  # uniqueness across the whole data set
    return [_patient(rng, wishes, today, phones, ids, emails) for _ in range(count)]
