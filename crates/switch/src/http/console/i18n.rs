//! The console's two languages: Persian (the default: right to left,
//! Persian digits, Jalali dates) and English. Every word a page shows is
//! looked up here by key, so a page cannot show one language's label in
//! the other's layout; a key without a text shows the key itself, which
//! the browser test would see.

pub use crate::lang::Lang;

/// The cookie that keeps a browser's language.
pub const LANG_COOKIE: &str = "cs_lang";

impl Lang {
    /// The `Set-Cookie` that keeps this language in the browser for a
    /// year (not HttpOnly-worthy: it says nothing but `fa` or `en`).
    pub fn cookie(self) -> String {
        format!(
            "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000",
            self.code()
        )
    }

    /// The text of `key`, or the key itself if it has none.
    pub fn text(self, key: &str) -> &str {
        match TEXTS.binary_search_by(|(k, ..)| (*k).cmp(key)) {
            Ok(i) => match self {
                Lang::Fa => TEXTS[i].1,
                Lang::En => TEXTS[i].2,
            },
            Err(_) => key,
        }
    }
}

/// Every text the console shows: key, Persian, English. Sorted by key (a
/// test checks), so a look-up is a binary search.
pub static TEXTS: &[(&str, &str, &str)] = &[
    ("action.block", "مسدود کردن", "Block"),
    ("action.create", "ساختن", "Create"),
    ("action.edit", "ویرایش", "Edit"),
    (
        "action.opt_in",
        "دریافت دوبارهٔ پیام‌ها",
        "Receive offers again",
    ),
    ("action.opt_out", "لغو پیام‌های تبلیغاتی", "Stop offers"),
    ("action.preview", "پیش‌نمایش", "Preview"),
    ("action.renew", "کارت جایگزین", "Replace card"),
    ("action.save", "ذخیره", "Save"),
    ("action.search", "جستجو", "Search"),
    ("action.send_code", "فرستادن کد", "Send code"),
    ("action.sign_in", "ورود", "Sign in"),
    ("action.sign_out", "خروج", "Sign out"),
    ("action.top_up", "افزایش موجودی", "Top up"),
    ("action.unblock", "رفع انسداد", "Unblock"),
    ("action.unlock", "باز کردن قفل", "Unlock"),
    ("app.name", "باشگاه مشتریان", "Customer club"),
    (
        "audit.broken",
        "دفتر ناسازگاری دارد",
        "The ledger has violations",
    ),
    ("audit.ok", "دفتر سازگار است", "The ledger is consistent"),
    ("chart.sales_by_day", "فروش روزانه", "Sales by day"),
    (
        "code.BankDiscount",
        "تخفیف کارت بانکی",
        "Bank-card discount",
    ),
    ("code.ClubBalance", "موجودی باشگاه", "Club balance"),
    ("code.ClubPurchase", "خرید باشگاهی", "Club purchase"),
    ("code.ClubRefund", "برگشت خرید باشگاهی", "Club refund"),
    ("code.PointsPurchase", "خرید با امتیاز", "Points purchase"),
    ("code.PointsRefund", "برگشت خرید امتیازی", "Points refund"),
    (
        "code.StoreBalance",
        "موجودی اعتبار فروشگاهی",
        "Store credit balance",
    ),
    (
        "code.StorePurchase",
        "خرید با اعتبار فروشگاهی",
        "Store credit purchase",
    ),
    (
        "code.StoreRefund",
        "برگشت اعتبار فروشگاهی",
        "Store credit refund",
    ),
    ("dash.approved", "تأییدشده", "Approved"),
    ("dash.best_customers", "بهترین مشتریان", "Best customers"),
    (
        "dash.by_code",
        "پاسخ‌ها از آغاز به کار سوئیچ",
        "Answers since the switch started",
    ),
    (
        "dash.credit_outstanding",
        "اعتبار فروشگاهی مانده",
        "Store credit outstanding",
    ),
    ("dash.discounts", "تخفیف‌ها", "Discounts"),
    ("dash.fees", "کارمزدها", "Fees"),
    ("dash.new_members", "اعضای تازه", "New members"),
    ("dash.period", "بازه", "Period"),
    ("dash.points_issued", "امتیاز داده‌شده", "Points issued"),
    (
        "dash.points_outstanding",
        "امتیاز مانده",
        "Points outstanding",
    ),
    ("dash.points_redeemed", "امتیاز خرج‌شده", "Points redeemed"),
    ("dash.purchases", "خریدها", "Purchases"),
    ("dash.refunds", "برگشتی‌ها", "Refunds"),
    (
        "dash.returning_members",
        "اعضای بازگشته",
        "Returning members",
    ),
    ("dash.sales", "فروش", "Sales"),
    ("dash.settlement_due", "تسویهٔ پرداخت‌نشده", "Settlement due"),
    (
        "dash.terminals_online",
        "اتصال‌های پایانه",
        "Terminal connections",
    ),
    ("days.1", "امروز", "Today"),
    ("days.30", "۳۰ روز", "30 days"),
    ("days.365", "۳۶۵ روز", "365 days"),
    ("days.7", "۷ روز", "7 days"),
    ("draw.eligible", "واجدان شرایط", "Eligible"),
    ("draw.prizes", "جایزه‌ها", "Prizes"),
    ("draw.winners", "برندگان", "Winners"),
    (
        "err.bad_request",
        "درخواست نادرست است",
        "The request is not valid",
    ),
    (
        "err.forbidden",
        "این کار برای نقش شما مجاز نیست",
        "Your role may not do this",
    ),
    (
        "err.locked_out",
        "گذرواژهٔ نادرست بیش از اندازه: ورود مدتی بسته است؛ بعداً دوباره بکوشید",
        "Too many wrong passwords: signing in is locked for a while; try again later",
    ),
    ("err.not_found", "پیدا نشد", "Not found"),
    (
        "err.wrong_login",
        "نام، گذرواژه یا کد نادرست است",
        "Wrong name, password or code",
    ),
    ("field.amount", "مبلغ (ریال)", "Amount (rials)"),
    (
        "field.budget",
        "بودجهٔ تخفیف (ریال)",
        "Discount budget (rials)",
    ),
    ("field.cap", "سقف تخفیف (ریال)", "Discount cap (rials)"),
    ("field.card", "شمارهٔ کارت", "Card number"),
    ("field.code", "کد یک‌بارمصرف", "One-time code"),
    ("field.expiry", "انقضا (YYMM)", "Expiry (YYMM)"),
    ("field.fixed", "تخفیف ثابت (ریال)", "Fixed discount (rials)"),
    ("field.from", "از تاریخ", "From"),
    (
        "field.min_purchase",
        "کمترین خرید (ریال)",
        "Minimum purchase (rials)",
    ),
    ("field.name", "نام", "Name"),
    ("field.new_card", "شمارهٔ کارت تازه", "New card number"),
    ("field.password", "گذرواژه", "Password"),
    ("field.percent", "درصد تخفیف", "Discount percent"),
    ("field.phone", "شمارهٔ همراه", "Mobile number"),
    (
        "field.query",
        "تلفن، نام یا چهار رقم آخر کارت",
        "Phone, name or last four card digits",
    ),
    (
        "field.sample",
        "خرید نمونه (ریال)",
        "Sample purchase (rials)",
    ),
    ("field.tier", "سطح", "Tier"),
    ("field.to", "تا تاریخ", "To"),
    (
        "form.bad_date",
        "تاریخ را به شکل ۱۴۰۵/۰۹/۱۱ یا 2026-12-02 بنویسید",
        "Write the date as 2026-12-02 or 1405/09/11",
    ),
    (
        "form.bad_period",
        "پایان پیش از آغاز است",
        "The end is before the start",
    ),
    (
        "form.invalid",
        "فرم را درست کنید",
        "Please correct the form",
    ),
    ("form.must_be_number", "باید عدد باشد", "must be a number"),
    ("form.name_required", "نام لازم است", "A name is required"),
    (
        "form.percent_range",
        "درصد باید بین ۰ و ۱۰۰ باشد",
        "Percent must be between 0 and 100",
    ),
    (
        "form.some_discount",
        "درصد یا مبلغ ثابت لازم است",
        "Give a percent or a fixed amount",
    ),
    ("kind.bank", "کارت بانکی", "Bank card"),
    ("kind.club", "کارت باشگاه", "Club card"),
    ("kind.points", "امتیاز", "Points"),
    ("kind.store", "اعتبار فروشگاهی", "Store credit"),
    ("lang.default", "پیش‌فرض باشگاه", "The club's default"),
    ("lang.en", "انگلیسی", "English"),
    ("lang.fa", "فارسی", "Persian"),
    ("lang.switch", "English", "فارسی"),
    (
        "login.code_sent",
        "اگر عضوی این شماره را داشته باشد، کد فرستاده شد؛ پنج دقیقه و یک‌بار کار می‌کند.",
        "If a member has this phone, a code is on its way; it works once, for five minutes.",
    ),
    (
        "login.member",
        "ورود اعضا با کد پیامکی",
        "Members: sign in with a text message code",
    ),
    ("login.staff", "ورود کارکنان", "Staff sign-in"),
    ("member.balances", "موجودی‌ها", "Balances"),
    ("member.cards", "کارت‌ها", "Cards"),
    ("member.club_balance", "موجودی باشگاه", "Club balance"),
    ("member.expiring", "در حال انقضا", "Expiring"),
    ("member.history", "تاریخچه", "History"),
    ("member.language", "زبان پیام‌ها", "Language of messages"),
    (
        "member.marketing_off",
        "پیام‌های تبلیغاتی لغو شده است؛ رسید خرید و هشدار انقضا همچنان می‌رسد",
        "Opted out of offers; receipts and expiry warnings still come",
    ),
    (
        "member.marketing_on",
        "پیام‌های تبلیغاتی، تبریک‌ها و یادآوری‌ها را دریافت می‌کند",
        "Receives offers, greetings and reminders",
    ),
    ("member.messages", "پیام‌ها", "Messages"),
    ("member.next_tier", "تا سطح بعد", "To the next tier"),
    ("member.phone", "تلفن همراه", "Mobile"),
    ("member.points", "امتیاز", "Points"),
    ("member.referral", "کد معرفی", "Referral code"),
    (
        "member.rolling",
        "خرید دورهٔ اخیر (ریال)",
        "Recent spend (rials)",
    ),
    (
        "member.rolling_points",
        "امتیاز دورهٔ اخیر",
        "Recent points earned",
    ),
    ("member.store_credit", "اعتبار فروشگاهی", "Store credit"),
    ("member.tier", "سطح", "Tier"),
    ("member.top_tier", "بالاترین سطح", "Top tier"),
    (
        "merchant.statements",
        "صورت‌حساب تسویه",
        "Settlement statements",
    ),
    ("nav.audit", "بازبینی دفتر", "Ledger audit"),
    ("nav.audit_log", "گزارش کارها", "Action log"),
    ("nav.dashboard", "پیشخوان", "Dashboard"),
    ("nav.draws", "قرعه‌کشی‌ها", "Draws"),
    ("nav.members", "اعضا", "Members"),
    ("nav.merchants", "پذیرندگان", "Merchants"),
    ("nav.notices", "پیام‌ها", "Notices"),
    ("nav.program", "برنامهٔ وفاداری", "Loyalty programme"),
    ("nav.rules", "تخفیف‌ها و کمپین‌ها", "Discounts and campaigns"),
    ("nav.segments", "بخش‌بندی مشتریان", "Customer segments"),
    ("nav.settlements", "تسویه‌ها", "Settlements"),
    ("nav.terminals", "پایانه‌ها", "Terminals"),
    ("notice.attempts", "تلاش‌ها", "Attempts"),
    ("notice.last_error", "آخرین خطا", "Last error"),
    ("page.next", "بعدی", "Next"),
    ("page.of", "از", "of"),
    ("page.page", "صفحهٔ", "Page"),
    ("page.prev", "قبلی", "Previous"),
    (
        "preview.below_minimum",
        "این خرید از کمترین خرید کمتر است و تخفیفی نمی‌گیرد",
        "This purchase is below the minimum and gets no discount",
    ),
    ("preview.discount", "تخفیف", "Discount"),
    ("preview.fee", "کارمزد", "Fee"),
    ("preview.net", "مبلغ قابل پرداخت", "To pay"),
    (
        "preview.title",
        "یک خرید نمونه با این قاعده",
        "A sample purchase under this rule",
    ),
    (
        "program.auto_convert_at",
        "تبدیل خودکار به اعتبار از",
        "Converted to credit automatically at",
    ),
    (
        "program.credit_per_point",
        "اعتبار هر امتیاز (ریال)",
        "Credit per point (rials)",
    ),
    (
        "program.earn",
        "امتیاز به ازای هر مبلغ (ریال)",
        "Points per amount (rials)",
    ),
    (
        "program.none",
        "این پذیرنده برنامهٔ وفاداری ندارد",
        "This merchant runs no loyalty programme",
    ),
    (
        "program.points_valid_days",
        "اعتبار امتیاز (روز)",
        "Points valid for (days)",
    ),
    ("program.referral_points", "امتیاز معرفی", "Referral points"),
    (
        "program.till",
        "پرداخت با امتیاز: ریال هر امتیاز · کمترین امتیاز",
        "Paying with points: rials a point · fewest points",
    ),
    ("segment.at_risk", "در خطر رفتن", "At risk"),
    ("segment.champions", "قهرمانان", "Champions"),
    ("segment.lost", "از دست رفته", "Lost"),
    ("segment.loyal", "وفادار", "Loyal"),
    ("segment.new", "تازه", "New"),
    ("segment.regular", "عادی", "Regular"),
    (
        "segments.csv",
        "دریافت فهرست (CSV)",
        "Download the list (CSV)",
    ),
    (
        "segments.recency",
        "روز از آخرین خرید",
        "Days since last purchase",
    ),
    ("settle.files", "پرونده‌های بانک", "Bank files"),
    (
        "settle.payouts",
        "پرداخت‌ها به پذیرندگان (۲۰ تای آخر)",
        "Payouts to merchants (last 20)",
    ),
    ("state.confirmed", "قطعی", "Confirmed"),
    ("state.expired", "منقضی", "Expired"),
    ("state.held", "در انتظار تأیید", "Held"),
    ("state.reversed", "برگشت‌خورده", "Reversed"),
    ("state.voided", "باطل", "Voided"),
    ("status.active", "فعال", "Active"),
    ("status.blocked", "مسدود", "Blocked"),
    ("status.inactive", "غیرفعال", "Inactive"),
    ("table.action", "کار", "Action"),
    ("table.actor", "کاربر", "Actor"),
    ("table.amount", "مبلغ", "Amount"),
    ("table.code", "کد پاسخ", "Response code"),
    ("table.count", "تعداد", "Count"),
    ("table.date", "تاریخ", "Date"),
    ("table.due", "سررسید", "Due"),
    ("table.empty", "چیزی نیست", "Nothing here"),
    ("table.group", "گروه", "Group"),
    ("table.id", "شناسه", "Id"),
    ("table.kind", "نوع", "Kind"),
    ("table.last4", "چهار رقم آخر", "Last four"),
    ("table.locked", "قفل", "Locked"),
    ("table.merchant", "پذیرنده", "Merchant"),
    ("table.net", "خالص", "Net"),
    ("table.ok", "درست", "OK"),
    ("table.role", "نقش", "Role"),
    ("table.rrn", "شمارهٔ پیگیری", "RRN"),
    ("table.state", "وضعیت", "State"),
    ("table.status", "وضعیت", "Status"),
    ("table.target", "هدف", "Target"),
    ("table.terminal", "پایانه", "Terminal"),
    ("table.total", "جمع", "Total"),
    ("table.waiting", "در صف", "Waiting"),
    (
        "terminal.failures",
        "بررسی‌های امنیتی ناموفق",
        "Failed security checks",
    ),
    (
        "terminal.key_pending",
        "کلید تازه، هنوز نگرفته",
        "New key not yet taken",
    ),
    ("tier.bronze", "برنزی", "Bronze"),
    ("tier.gold", "طلایی", "Gold"),
    ("tier.platinum", "پلاتینی", "Platinum"),
    ("tier.silver", "نقره‌ای", "Silver"),
    ("title.login", "ورود", "Sign in"),
    ("transfer.not_sent", "هنوز به بانک نرفته", "Not sent yet"),
    (
        "transfer.owed_by_merchant",
        "بدهی پذیرنده",
        "Owed by the merchant",
    ),
    ("transfer.paid", "پرداخت‌شده", "Paid"),
    ("transfer.returned", "برگشت از بانک", "Returned by the bank"),
    ("transfer.sent", "فرستاده به بانک", "Sent to the bank"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_sorted_and_unique_so_look_ups_find_them() {
        for w in TEXTS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        assert_eq!(Lang::En.text("nav.members"), "Members");
        assert_eq!(Lang::Fa.text("nav.members"), "اعضا");
        assert_eq!(Lang::Fa.text("no.such.key"), "no.such.key");
    }

    #[test]
    fn numbers_have_separators_and_persian_digits_in_persian() {
        assert_eq!(Lang::En.number(12_500_000), "12,500,000");
        assert_eq!(Lang::En.number(-1_000), "-1,000");
        assert_eq!(Lang::En.number(999), "999");
        assert_eq!(Lang::Fa.number(12_500_000), "۱۲٬۵۰۰٬۰۰۰");
    }

    #[test]
    fn dates_are_jalali_in_persian_and_iso_in_english() {
        // 2026-03-21 is 1 Farvardin 1405.
        let day = clubswitch_wire::fields::days_from_civil(2026, 3, 21);
        assert_eq!(Lang::Fa.date(day), "۱۴۰۵/۰۱/۰۱");
        assert_eq!(Lang::En.date(day), "2026-03-21");
        assert_eq!(
            Lang::En.time(day * 86_400 + 3600, 12_600),
            "2026-03-21 04:30"
        );
    }
}
