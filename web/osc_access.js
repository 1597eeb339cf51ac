// Who may play over OSC, on the control page: hosts refused recently, each with
// an Allow button, and the paired hosts with Remove. The server sends both lists
// as state (/osc/refused: host, count, host, count...; /osc/paired: hosts).

const $ = (selector) => document.querySelector(selector);

function item(text, label, onClick) {
  const li = document.createElement("li");
  const span = document.createElement("span");
  span.textContent = text;
  const button = document.createElement("button");
  button.textContent = label;
  button.addEventListener("click", onClick);
  li.append(span, button);
  return li;
}

export function setupOscAccess({ send, handlers }) {
  handlers.set("/osc/refused", (args) => {
    const rows = [];
    for (let i = 0; i + 1 < args.length; i += 2) {
      const [host, count] = [String(args[i]), Number(args[i + 1])];
      const messages = count === 1 ? "1 message" : `${count} messages`;
      rows.push(item(`${host} sent ${messages}`, "allow", () => send("/osc/allow", host)));
    }
    $("#osc-refused").replaceChildren(...rows);
    $("#osc-refused-none").hidden = rows.length > 0;
  });
  handlers.set("/osc/paired", (hosts) => {
    $("#osc-paired").replaceChildren(
      ...hosts.map((host) => item(`${host} may play`, "remove", () => send("/osc/deny", String(host)))),
    );
  });
}
