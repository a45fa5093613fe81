import { DEFAULT_LOCALE, type Locale } from "./locale.js";

type Catalog = Record<Locale, string>;

/** Every user-facing sentence, in each supported language. `{name}` marks a parameter. */
export const MESSAGES = {
  "error.VALIDATION_ERROR": {
    en: "Some answers are invalid. Please check them and submit again.",
    fr: "Certaines réponses ne sont pas valides. Veuillez les vérifier puis les soumettre à nouveau.",
    de: "Einige Antworten sind ungültig. Bitte prüfen Sie sie und senden Sie sie erneut.",
  },
  "error.TIMEOUT": {
    en: "Processing took too long and was stopped.",
    fr: "Le traitement a pris trop de temps et a été interrompu.",
    de: "Die Verarbeitung hat zu lange gedauert und wurde abgebrochen.",
  },
  "error.CANCELLED": {
    en: "The job was cancelled.",
    fr: "La tâche a été annulée.",
    de: "Der Auftrag wurde abgebrochen.",
  },
  "error.STALLED": {
    en: "The worker processing this job stopped responding.",
    fr: "Le processus qui traitait cette tâche ne répond plus.",
    de: "Der Prozess, der diesen Auftrag bearbeitete, reagiert nicht mehr.",
  },
  "error.FILE_ERROR": {
    en: "A file needed for processing could not be read or written.",
    fr: "Un fichier nécessaire au traitement n'a pas pu être lu ou écrit.",
    de: "Eine für die Verarbeitung benötigte Datei konnte nicht gelesen oder geschrieben werden.",
  },
  "error.NETWORK_ERROR": {
    en: "A service needed for processing could not be reached.",
    fr: "Un service nécessaire au traitement est injoignable.",
    de: "Ein für die Verarbeitung benötigter Dienst ist nicht erreichbar.",
  },
  "error.QUEUE_ERROR": {
    en: "The job could not be scheduled for processing.",
    fr: "La tâche n'a pas pu être planifiée pour le traitement.",
    de: "Der Auftrag konnte nicht zur Verarbeitung eingeplant werden.",
  },
  "error.WORKER_ERROR": {
    en: "An unexpected error occurred while processing.",
    fr: "Une erreur inattendue s'est produite pendant le traitement.",
    de: "Bei der Verarbeitung ist ein unerwarteter Fehler aufgetreten.",
  },
  "error.PERMANENT_ERROR": {
    en: "This job cannot be processed.",
    fr: "Cette tâche ne peut pas être traitée.",
    de: "Dieser Auftrag kann nicht verarbeitet werden.",
  },
  "error.RESULT_ERROR": {
    en: "Processing finished, but its result could not be saved.",
    fr: "Le traitement est terminé, mais son résultat n'a pas pu être enregistré.",
    de: "Die Verarbeitung ist abgeschlossen, aber ihr Ergebnis konnte nicht gespeichert werden.",
  },
  "assessment.alreadyCompleted": {
    en: "This assessment was already completed; here is its processing job.",
    fr: "Cette évaluation était déjà terminée ; voici sa tâche de traitement.",
    de: "Diese Bewertung wurde bereits abgeschlossen; hier ist ihr Verarbeitungsauftrag.",
  },
  "assessment.completed": {
    en: "Assessment completed; processing has started.",
    fr: "Évaluation terminée ; le traitement a commencé.",
    de: "Bewertung abgeschlossen; die Verarbeitung hat begonnen.",
  },
  "assessment.jobExpired": {
    en: "This assessment was already completed and processed; its results are no longer kept.",
    fr: "Cette évaluation a déjà été terminée et traitée ; ses résultats ne sont plus conservés.",
    de: "Diese Bewertung wurde bereits abgeschlossen und verarbeitet; ihre Ergebnisse werden nicht mehr aufbewahrt.",
  },
  "assessment.jobNotCreated": {
    en: "Assessment completed, but its processing job could not be created. Please try again later.",
    fr: "Évaluation terminée, mais sa tâche de traitement n'a pas pu être créée. Veuillez réessayer plus tard.",
    de: "Bewertung abgeschlossen, aber ihr Verarbeitungsauftrag konnte nicht erstellt werden. Bitte versuchen Sie es später erneut.",
  },
} satisfies Record<string, Catalog>;

export type MessageKey = keyof typeof MESSAGES;

export function translate(key: MessageKey, locale: Locale = DEFAULT_LOCALE, parameters: Record<string, string | number> = {}): string {
  const template = MESSAGES[key][locale] ?? MESSAGES[key][DEFAULT_LOCALE];
  return template.replace(/\{(\w+)\}/g, (match, name: string) => String(parameters[name] ?? match));
}
