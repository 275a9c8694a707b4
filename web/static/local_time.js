// The phone page's times in the phone's own time zone and the page's language; without script
// they stay as the server wrote them, in UTC.
"use strict";
for (const element of document.querySelectorAll("time[datetime]")) {
  const moment = new Date(element.getAttribute("datetime"));
  if (Number.isNaN(moment.getTime())) continue;
  element.textContent = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    dateStyle: "long",
    timeStyle: "short",
  }).format(moment);
  element.title = moment.toISOString();
}
