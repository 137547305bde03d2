// Train > "Choose Training Type": Quick Training or Advanced Training (budget in hours, the estimated minimum
// budget, the notification e-mail), selected tags. Azure's refusals are shown with their text.
import { portal, training } from './api.js';
import { useApp, useProject } from './context.js';
import { html, navigate, useState } from './lib.js';
import { Dialog, ErrorText, toast } from './ui.js';

export function TrainDialog({ onClose }) {
  const ctx = useProject();
  const app = useApp();
  const pid = ctx.project.id;
  const facts = app.info.training;
  const detection = ctx.projectType === 'ObjectDetection';
  const regular = ctx.tags.filter((t) => t.type !== 'Negative');
  const [type, setType] = useState('Regular');
  const [hours, setHours] = useState(facts.minimumBudgetHours);
  const [mail, setMail] = useState(false);
  const [address, setAddress] = useState('');
  const [subset, setSubset] = useState(false);
  const [selected, setSelected] = useState(regular.map((t) => t.id));
  const [force, setForce] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const minimum = facts.minImagesPerTag[detection ? 'ObjectDetection' : 'Classification'];
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const advanced = type === 'Advanced';
      const it = await training.trainProject(pid, { trainingType: type,
        reservedBudgetInHours: advanced ? hours : 0, forceTrain: force,
        notificationEmailAddress: advanced && mail ? address.trim() : undefined,
        selectedTags: subset ? selected : undefined });
      if (advanced && mail) await portal.notify(pid, it.id, address.trim());
      await ctx.reloadIterations();
      toast(`${it.name} is training`);
      onClose();
      navigate(['projects', pid, 'performance'], { iteration: it.id });
    } catch (err) { setError(err); setBusy(false); }
  };
  const seconds = facts.secondsPerBudgetHour;
  return html`<${Dialog} title="Choose Training Type" onClose=${onClose}>
    <form class="form" onSubmit=${submit}>
      <fieldset class="choices">
        <legend>Training type</legend>
        <label class="choice"><input type="radio" name="training-type" checked=${type === 'Regular'}
          onChange=${() => setType('Regular')} /><span>Quick Training</span></label>
        <label class="choice"><input type="radio" name="training-type" checked=${type === 'Advanced'}
          onChange=${() => setType('Advanced')} /><span>Advanced Training</span></label>
      </fieldset>
      ${type === 'Regular' ? html`<p class="muted">Quick Training trains in a few seconds to a few minutes with
          default settings (the API's trainingType "Regular").</p>`
        : html`<div class="advanced">
          <p>Advanced Training searches longer for a better model, within the time budget you set.</p>
          <label for="budget" class="field-label">Training budget (hours)</label>
          <input id="budget" type="number" min="0" max="96" step="1" value=${hours}
            onInput=${(e) => setHours(Number(e.currentTarget.value))} />
          <p class="muted small">Estimated minimum budget: ${facts.minimumBudgetHours} hour. In cvlab one budget
            hour is ${seconds} s of lab time, so ${hours} h trains for up to ${hours * seconds} s.</p>
          <label class="choice"><input type="checkbox" checked=${mail} onChange=${(e) => setMail(e.currentTarget.checked)} />
            <span>Send me an email when training is complete</span></label>
          ${mail && html`<label for="mail" class="field-label">Email address</label>
            <input id="mail" type="email" value=${address} required onInput=${(e) => setAddress(e.currentTarget.value)} />
            <p class="muted small">In cvlab the e-mail is written to the workspace's outbox: gallery settings gear >
              Open outbox.</p>`}
        </div>`}
      <details class="more" open=${subset}>
        <summary>More options</summary>
        <label class="choice"><input type="checkbox" checked=${subset} onChange=${(e) => setSubset(e.currentTarget.checked)} />
          <span>Train on selected tags only</span></label>
        ${subset && html`<fieldset class="choices"><legend>Selected tags</legend>
          ${regular.map((t) => html`<label class="choice" key=${t.id}><input type="checkbox" checked=${selected.includes(t.id)}
            onChange=${(ev) => setSelected(ev.currentTarget.checked ? [...selected, t.id] : selected.filter((x) => x !== t.id))} />
            <span>${t.name} (${t.imageCount})</span></label>`)}</fieldset>`}
        <label class="choice"><input type="checkbox" checked=${force} onChange=${(e) => setForce(e.currentTarget.checked)} />
          <span>Train even if nothing changed (forceTrain)</span></label>
      </details>
      <p class="muted small">Every tag needs at least ${minimum} images${detection ? ' with regions' : ''}; 50 or more
        per tag give a much better model. Training cannot be cancelled once it starts.</p>
      <${ErrorText} error=${error} />
      <div class="buttons">
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button>
        <button type="submit" class="primary" disabled=${busy}>${busy ? 'Starting…' : 'Train'}</button>
      </div>
    </form>
  </${Dialog}>`;
}
