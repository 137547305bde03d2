// Who is signed in (session info and resources), shared by every screen.
import { createContext, useContext } from './lib.js';

export const AppContext = createContext(null);
export const useApp = () => useContext(AppContext);

/** The open project and what its tabs share: project, tags, iterations, domain, reloaders, dialogs. */
export const ProjectContext = createContext(null);
export const useProject = () => useContext(ProjectContext);

export function isTraining(it) { return it.status === 'Training' || it.status === 'Queued'; }
