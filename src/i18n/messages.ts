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
  "fileProblem.empty_file": {
    en: "The file is empty: it has no header line.",
    fr: "Le fichier est vide : il n'a pas de ligne d'en-tête.",
    de: "Die Datei ist leer: Sie hat keine Kopfzeile.",
  },
  "fileProblem.unsupported_encoding": {
    en: "The file is saved as UTF-16. Save it as UTF-8 or Windows-1252 and upload it again.",
    fr: "Le fichier est enregistré en UTF-16. Enregistrez-le en UTF-8 ou Windows-1252 puis envoyez-le à nouveau.",
    de: "Die Datei ist in UTF-16 gespeichert. Speichern Sie sie als UTF-8 oder Windows-1252 und laden Sie sie erneut hoch.",
  },
  "fileProblem.bad_encoding": {
    en: "The file is not readable text: invalid characters at line {line} (byte {offset}). Save it as UTF-8 or Windows-1252.",
    fr: "Le fichier n'est pas du texte lisible : caractères invalides à la ligne {line} (octet {offset}). Enregistrez-le en UTF-8 ou Windows-1252.",
    de: "Die Datei ist kein lesbarer Text: ungültige Zeichen in Zeile {line} (Byte {offset}). Speichern Sie sie als UTF-8 oder Windows-1252.",
  },
  "fileProblem.malformed_csv": {
    en: "The file is not valid CSV at line {line} (an unclosed quote or a wrong number of columns).",
    fr: "Le fichier n'est pas un CSV valide à la ligne {line} (guillemet non fermé ou nombre de colonnes incorrect).",
    de: "Die Datei ist in Zeile {line} kein gültiges CSV (nicht geschlossenes Anführungszeichen oder falsche Spaltenanzahl).",
  },
  "fileProblem.record_too_long": {
    en: "The file has a record longer than 1,048,576 characters at line {line}: a line that long, or a quote opened there and never closed.",
    fr: "Le fichier contient un enregistrement de plus de 1 048 576 caractères à la ligne {line} : une ligne aussi longue, ou un guillemet ouvert là et jamais fermé.",
    de: "Die Datei enthält in Zeile {line} einen Datensatz mit mehr als 1.048.576 Zeichen: eine so lange Zeile oder ein dort geöffnetes und nie geschlossenes Anführungszeichen.",
  },
  "fileProblem.missing_columns": {
    en: "The file's header lacks these columns: {fields}.",
    fr: "Il manque ces colonnes dans l'en-tête du fichier : {fields}.",
    de: "In der Kopfzeile der Datei fehlen diese Spalten: {fields}.",
  },
  "fileProblem.file_missing": {
    en: "The uploaded file is no longer stored. Please upload it again.",
    fr: "Le fichier envoyé n'est plus conservé. Veuillez l'envoyer à nouveau.",
    de: "Die hochgeladene Datei ist nicht mehr gespeichert. Bitte laden Sie sie erneut hoch.",
  },
  "validationRun.unknown_rule_set": {
    en: "This rule set does not exist. The ruleSets query lists the available ones.",
    fr: "Ce jeu de règles n'existe pas. La requête ruleSets liste ceux qui sont disponibles.",
    de: "Dieses Regelwerk existiert nicht. Die Abfrage ruleSets listet die verfügbaren auf.",
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
